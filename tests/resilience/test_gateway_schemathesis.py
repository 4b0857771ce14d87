"""Property-based requests from the gateway's own OpenAPI, sent to the real gateway process
with an admin token: no answer is a 5xx, and every answer matches the document."""

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Ok

from tests.e2e.conftest import Running

# Bounded so the whole run stays well under a minute (21 operations at the time of writing).
EXAMPLES_PER_OPERATION = 50
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def _fuzz(operation: Any, headers: dict[str, str]) -> None:
    """Send generated requests for one operation; hypothesis shrinks and raises any failure."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    call()


def test_no_generated_request_gets_a_5xx_or_an_answer_outside_the_schema(
    running: Running,
) -> None:
    admin = {"Authorization": f"Bearer {running.platform.admin_token()}"}
    schema = schemathesis.openapi.from_url(running.platform.gateway_url + "/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        # An operation schemathesis cannot read is a broken document: fail on it, not skip it.
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) >= 20
    for operation in operations:
        _fuzz(operation, admin)
    print(f"{len(operations)} operations, up to {EXAMPLES_PER_OPERATION} requests each")
