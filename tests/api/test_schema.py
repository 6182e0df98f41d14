"""Schemathesis against the live schema: every operation, with a read-write and a
read-only token, generated inputs good and bad — no server error, and every answer as
the schema says (status, content type, body)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accounts.tokens import token_create

pytestmark = pytest.mark.django_db(transaction=True)
EXAMPLES = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def write_token(creator) -> str:
    return token_create(actor=creator, name="schemathesis write", scope="write", days=1)[1]


@pytest.fixture
def read_token(creator) -> str:
    return token_create(actor=creator, name="schemathesis read", scope="read", days=1)[1]


@pytest.fixture
def real_room(make_room):
    """A room its token's owner manages: changes reach the real Synapse, not only 404s."""
    return make_room()


def every_operation(base_url: str, token: str, room_id: str) -> list[str]:
    """Each operation of the live schema, with generated inputs; what failed, by operation."""
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json")
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5

    for operation in operations:

        @given(case=operation.as_strategy())
        @EXAMPLES
        def one(case) -> None:
            if "room_id" in (case.path_parameters or {}):
                case.path_parameters["room_id"] = room_id
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},
                # Some valid-looking input is refused by rules a schema cannot say (a
                # cursor this API did not make, a role without a person, a name taken):
                # those answers are checked by the other checks, not expected to be 2xx.
                excluded_checks=[positive_data_acceptance],
            )

        try:
            one()
        except Exception as failure:
            failures.append(f"{operation.label}: {failure}")
    return failures


def test_every_operation_with_a_read_write_token(live_server, write_token, real_room):
    assert every_operation(live_server.url, write_token, real_room.id) == []


def test_every_operation_with_a_read_only_token(live_server, read_token, real_room):
    assert every_operation(live_server.url, read_token, real_room.id) == []
