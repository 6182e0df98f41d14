# `make run` serves the portal with an embedded chat server and demo data;
# `make test` runs every test: unit, integration (real Synapse), browser (real Chromium).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CHROMIUM := /usr/bin/chromium
# Python keeps compiled modules (and pytest its rewritten test modules) in __pycache__
# (ignored by git) even where the environment asks it not to: a second `make unit`
# starts in about 1 s instead of 3.5.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run dev scaleout test unit nginx lint typecheck format chromium directory axe idp node clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

# roomctl, the command-line tool alone (`pip install .`), for `make run` and its tests.
$(BIN)/roomctl: pyproject.toml $(wildcard portal/cli/*.py) | $(BIN)/python
	$(BIN)/pip install -q .
	rm -rf build roomportal.egg-info
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(BIN)/roomctl | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# The state folder holds the chat server's secrets: owner only (umask 077).
# `make run SSO=1`: the demo signs people in through an identity provider as well.
run: $(VENV)/.installed $(BIN)/roomctl directory $(if $(SSO),idp)
	umask 077 && mkdir -p .state && chmod -R go-rwx .state && $(BIN)/python manage.py migrate --no-input
	umask 077 && $(BIN)/python manage.py runportal $(if $(SSO),--sso)

# For people changing the code: the same, with DEBUG on, served by Django's autoreloading
# development server (static files as they are, no collectstatic).
dev: $(VENV)/.installed
	umask 077 && mkdir -p .state && chmod -R go-rwx .state && $(BIN)/python manage.py migrate --no-input
	umask 077 && DEBUG=1 $(BIN)/python manage.py runportal --dev

# Two test processes, each with its own homeserver and test database: most of a test's
# time is spent waiting on its homeserver, so two halve the run even on two cores.
TEST_WORKERS ?= 2

# The test homeservers' databases (and every other temporary file) on tmpfs where there
# is one: Synapse waits for the disk on every event it stores.
TEST_TMPDIR := $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo $${TMPDIR:-/tmp})

test: $(VENV)/.installed-dev chromium nginx directory axe idp lint typecheck
	$(BIN)/python manage.py makemigrations --check --dry-run
	TMPDIR=$(TEST_TMPDIR) $(BIN)/pytest -n $(TEST_WORKERS)

# The fast layer: pure logic, the database and the in-memory chat server, nothing
# started (seconds). The authorization matrix's refusals run there too, in `make test`.
unit: $(VENV)/.installed-dev
	$(BIN)/pytest -m "not chat and not processes and not browser and not matrix"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The browser tests drive the system's Chromium (Debian's `chromium` package).
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "Installing Chromium from Debian's packages..."; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; \
	fi
	@test -x $(CHROMIUM) || { echo "Chromium is required at $(CHROMIUM) for the browser tests."; exit 1; }

# The demo's and the tests' directory: OpenLDAP's slapd (Debian's package), run by the
# portal from a folder of its own (accounts/directory/server.py), never as a service.
directory:
	@if [ ! -x /usr/sbin/slapd ]; then \
		echo "Installing OpenLDAP from Debian's packages..."; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq slapd ldap-utils; \
	fi
	@test -x /usr/sbin/slapd || { echo "OpenLDAP's slapd is required at /usr/sbin/slapd."; exit 1; }

# nginx fronts Synapse's workers in the scaled-out set-up (Debian's package).
nginx:
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then \
		echo "Installing nginx from Debian's packages..."; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nginx-light; \
	fi

# The portal scaled out on this machine: Synapse on PostgreSQL with two workers behind
# nginx, two portal processes (ports 8101 and 8102) on PostgreSQL and Redis.
scaleout: $(VENV)/.installed nginx
	umask 077 && $(BIN)/python manage.py scaleout --seed

# axe-core (accessibility checks), injected into pages by the browser tests.
AXE := tests/browser/axe/node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE): tests/browser/axe/package.json | node
	npm install --prefix tests/browser/axe --no-audit --no-fund --silent
	@test -f $(AXE) || { echo "axe-core did not install at $(AXE)."; exit 1; }
	touch $(AXE)

# Node.js and npm (Debian's packages), for axe-core and the identity provider.
node:
	@if ! command -v npm >/dev/null; then \
		echo "Installing Node.js from Debian's packages..."; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; \
	fi

# The demo's and the tests' OpenID Connect provider (accounts/idp: oidc-provider).
IDP := accounts/idp/node_modules/oidc-provider/package.json
idp: $(IDP)
$(IDP): accounts/idp/package.json accounts/idp/package-lock.json | node
	npm ci --prefix accounts/idp --no-audit --no-fund --silent
	@test -f $(IDP) || { echo "oidc-provider did not install at $(IDP)."; exit 1; }
	touch $(IDP)

clean:
	rm -rf $(VENV) .state .pytest_cache .ruff_cache tests/browser/axe/node_modules accounts/idp/node_modules

# Benchmarks run on demand, never as part of the tests.
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/bulk_add.py --people 500
