"""Settings, read from the environment with safe local defaults.

Secrets have no default outside DEBUG. With none of the CHAT_SERVER_* variables
set, the portal talks to the embedded Synapse that `make run` starts under the
state folder.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.logs import log_config
from portal.secrets import local_secret, parse_keys, private_file

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Off unless asked for: a debug page shows settings and local variables to anyone.
DEBUG = env_bool("DEBUG", False)

# Everything the portal keeps on this machine (SQLite database, embedded Synapse, keys).
# Only its owner may read it: it holds the chat server's secrets and the portal's keys.
STATE_DIR = Path(os.environ.get("PORTAL_STATE_DIR", BASE_DIR / ".state"))

# From the environment; on a single machine, a random key kept in the state folder
# (made on first start, readable by its owner only). Several machines share one key,
# so a scaled-out portal must set SECRET_KEY.
SECRET_KEY = os.environ.get("SECRET_KEY", "") or local_secret(STATE_DIR / "secret_key")

# Behind TLS (directly or through a proxy that sets X-Forwarded-Proto): HSTS, secure
# cookies and a redirect of plain HTTP. Off for a portal served on plain loopback HTTP.
HTTPS = env_bool("HTTPS", False)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    # First: its `createsuperuser` (which refuses usernames like chat IDs) replaces Django's.
    "accounts",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",
    "django_htmx",
    "template_partials",
    "axes",
    "django_prometheus",
    # Its templates and static files: /api/v1/docs loads Swagger UI from the portal itself,
    # not from a public CDN (blank without internet, and seen by a third party otherwise).
    "ninja",
    "portal",
    "rooms",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "portal.middleware.ClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.RequestIdMiddleware",
    "portal.middleware.ApiProblemMiddleware",
    "portal.middleware.RateLimitHeadersMiddleware",
    "portal.logs.RequestLogMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.sessions.SessionPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.HtmxContractMiddleware",
    "portal.middleware.ChatServerErrorMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Axes wants to be last: it turns a lockout into its own response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rooms.context_processors.approvals",
                "rooms.context_processors.index_status",
            ],
        },
    },
]

FORM_RENDERER = "portal.forms.PortalFormRenderer"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{STATE_DIR / 'portal.sqlite3'}",
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Created owner-only before SQLite creates it readable by all (its journal files
    # take the database file's mode).
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        private_file(Path(DATABASES["default"]["NAME"]))
    # Several processes write one file (web workers, the commands): each transaction
    # takes the write lock when it begins, and a writer waits its turn instead of
    # failing with "database is locked" (audit entries are never lost that way).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Axes first, so a locked-out login is refused before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.LocalAccountBackend",
    "accounts.backends.ChatServerBackend",
    "accounts.backends.SingleSignOnBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Repeated failed logins for one name from one address lock that pair out for a while.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Counted per person, not per spelling typed: "PAUL" and "@paul:server" are "paul".
AXES_USERNAME_CALLABLE = "accounts.backends.lockout_username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# Collected (`collectstatic`, which `make run` does) with content-hashed, compressed
# copies that WhiteNoise serves with far-future cache headers; with DEBUG on, the files
# are served as they are, so a changed stylesheet shows without collecting again.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

SESSION_COOKIE_HTTPONLY = True
# A session lasts at most this long from sign-in, and ends after this long unused
# (accounts.sessions): safe defaults for a portal that governs an organisation's rooms.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_LIFETIME_HOURS", "12")) * 3600
SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "60"))
# How often a chat user's session asks the chat server whether their account still
# exists and is active: a deactivated account's session ends within this many seconds.
ACCOUNT_CHECK_SECONDS = int(os.environ.get("ACCOUNT_CHECK_SECONDS", "60"))
# Sessions are read from the cache (Redis, when set) and written through to the
# database: a page costs no session query.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Error reports (the debug page, mail to admins) never show the chat server's token.
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.errors.SecretScrubbingFilter"

# The chat server. With none of these set, the embedded Synapse under STATE_DIR is used.
CHAT_SERVER_URL = os.environ.get("CHAT_SERVER_URL", "")
# Add-ins are web pages at https:// addresses; the embedded demo (no chat server of one's
# own) and DEBUG also take http:// pages on this machine (127.0.0.1, localhost, ::1).
ADD_INS_ALLOW_LOOPBACK = env_bool("ADD_INS_ALLOW_LOOPBACK", DEBUG or not CHAT_SERVER_URL)
CHAT_SERVER_NAME = os.environ.get("CHAT_SERVER_NAME", "")
CHAT_SERVICE_TOKEN = os.environ.get("CHAT_SERVICE_TOKEN", "")
_chat_settings = [CHAT_SERVER_URL, CHAT_SERVER_NAME, CHAT_SERVICE_TOKEN]
if any(_chat_settings) and not all(_chat_settings):
    raise ImproperlyConfigured(
        "Set all of CHAT_SERVER_URL, CHAT_SERVER_NAME and CHAT_SERVICE_TOKEN, or none of them "
        "to use the embedded chat server."
    )
CHAT_EMBEDDED_DIR = STATE_DIR / "synapse"
CHAT_EMBEDDED_PORT = int(os.environ.get("CHAT_EMBEDDED_PORT", "8008"))
CHAT_EMBEDDED_SERVER_NAME = os.environ.get("CHAT_EMBEDDED_SERVER_NAME", "portal.localhost")
# Where people's browsers reach the chat server for its single sign-on (accounts.sso),
# when not at CHAT_SERVER_URL (an address inside the organisation's network, say).
CHAT_SERVER_PUBLIC_URL = os.environ.get("CHAT_SERVER_PUBLIC_URL", "")
# Roles from the single sign-on: the attribute of the login's answer holding the
# provider's groups (the homeserver's `extra_attributes`), and the group for each role
# (empty: that role is granted by hand only).
SSO_GROUPS_ATTRIBUTE = os.environ.get("SSO_GROUPS_ATTRIBUTE", "groups")
SSO_ADMIN_GROUP = os.environ.get("SSO_ADMIN_GROUP", "")
SSO_AUDITOR_GROUP = os.environ.get("SSO_AUDITOR_GROUP", "")
SSO_COMPLIANCE_GROUP = os.environ.get("SSO_COMPLIANCE_GROUP", "")
CHAT_TIMEOUT_SECONDS = float(os.environ.get("CHAT_TIMEOUT_SECONDS", "10"))

# The directory (accounts.directory): groups and OUs named in categories' scopes. Empty
# DIRECTORY_URL: none. OpenLDAP's defaults; for Active Directory set
# DIRECTORY_USER_ATTRIBUTE=sAMAccountName, DIRECTORY_PERSON_CLASS=user,
# DIRECTORY_PERSON_FILTER=(!(objectClass=computer)) (its computers are users too) and
# DIRECTORY_GROUP_CLASS=group (its `member` holds people and nested groups, as here).
DIRECTORY_URL = os.environ.get("DIRECTORY_URL", "")
DIRECTORY_BIND_DN = os.environ.get("DIRECTORY_BIND_DN", "")
DIRECTORY_BIND_PASSWORD = os.environ.get("DIRECTORY_BIND_PASSWORD", "")
DIRECTORY_BASE = os.environ.get("DIRECTORY_BASE", "")
DIRECTORY_USER_ATTRIBUTE = os.environ.get("DIRECTORY_USER_ATTRIBUTE", "uid")
DIRECTORY_NAME_ATTRIBUTE = os.environ.get("DIRECTORY_NAME_ATTRIBUTE", "displayName")
DIRECTORY_PERSON_CLASS = os.environ.get("DIRECTORY_PERSON_CLASS", "inetOrgPerson")
# Entries of the person class that are not people, left out by an LDAP filter they fail.
DIRECTORY_PERSON_FILTER = os.environ.get("DIRECTORY_PERSON_FILTER", "")
DIRECTORY_GROUP_CLASS = os.environ.get("DIRECTORY_GROUP_CLASS", "groupOfNames")
# People the directory holds but has disabled, as an LDAP filter: they count as in no
# group or OU, and the embedded homeserver does not sign them in. Active Directory:
# (userAccountControl:1.2.840.113556.1.4.803:=2); OpenLDAP with the password policy
# overlay: (pwdAccountLockedTime=*). Empty: none are disabled.
DIRECTORY_DISABLED_FILTER = os.environ.get("DIRECTORY_DISABLED_FILTER", "")
# How often the job runner reads the directory and applies what changed (seconds).
DIRECTORY_POLL_SECONDS = float(os.environ.get("DIRECTORY_POLL_SECONDS", "30"))

# The audit chain's keys, kept outside the database: "id:key,id:key" (the first seals
# new entries; older ones stay listed so entries they sealed still verify). On a single
# machine, a random key in the state folder. Anchors of the chain's head are appended
# to AUDIT_ANCHOR_FILE (and logged): ship them somewhere the database's users cannot
# write.
AUDIT_CHAIN_KEYS = parse_keys(os.environ.get("AUDIT_CHAIN_KEYS", "")) or {
    "local": local_secret(STATE_DIR / "audit_chain_key")
}
AUDIT_CHAIN_KEY_ID = next(iter(AUDIT_CHAIN_KEYS))
AUDIT_ANCHOR_FILE = Path(os.environ.get("AUDIT_ANCHOR_FILE", STATE_DIR / "audit-anchors.jsonl"))

# E-mail (rooms.outbox): SMTP to EMAIL_HOST when it is set (EMAIL_PORT, EMAIL_HOST_USER,
# EMAIL_HOST_PASSWORD, EMAIL_USE_TLS); otherwise each message is written as a file to
# MAIL_DIR (.state/mail), the mail sink `make run` names, where a person reads it.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "") == "1"
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
EMAIL_FILE_PATH = os.environ.get("MAIL_DIR", str(STATE_DIR / "mail"))
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend",
)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Room portal <rooms@localhost>")
PORTAL_URL = os.environ.get("PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")
ROOM_REQUEST_EXPIRY_DAYS = int(os.environ.get("ROOM_REQUEST_EXPIRY_DAYS", "14"))
# Requests a personal access token may make in a minute (then 429, with Retry-After).
API_RATE_LIMIT_PER_MINUTE = int(os.environ.get("API_RATE_LIMIT_PER_MINUTE", "600"))

LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("LOG_FORMAT is json or text.")
LOGGING = log_config(LOG_FORMAT, os.environ.get("LOG_LEVEL", "INFO"))

# The cache: Redis when REDIS_URL names one (shared by every process and machine),
# else each process's memory.
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
    }

# Prometheus metrics at /metrics, answered only to these client addresses (the
# scraper's), or to a request bearing METRICS_TOKEN (`Authorization: Bearer …`).
METRICS_ALLOWED_ADDRESSES = env_list("METRICS_ALLOWED_ADDRESSES", "127.0.0.1,::1")
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# The reverse proxies in front of the portal (nginx): only a request from one of these
# addresses has its client address taken from X-Forwarded-For (portal.middleware).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
