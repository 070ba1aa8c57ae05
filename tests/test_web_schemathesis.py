"""Property-based run of the console's OpenAPI document (schemathesis): no request, however
odd, makes the server fail (HTTP 5xx). Every operation, as an operator with an API token, on
seeded data; examples are bounded so the run stays in seconds.

(Operations are driven with hypothesis directly: schemathesis' pytest plugin does not load on
pytest 9.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.web_support import OPERATOR_TOKEN, console_settings, seed
from worker.web.app import create_app

HEADERS = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def test_no_request_makes_the_server_fail(db, clock):
    seed(db, clock.now)
    app = create_app(db, console_settings(), clock=clock)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            case.call_and_validate(headers=HEADERS, checks=[not_a_server_error])

        try:
            run()
        except Exception as exc:
            pytest.fail(f"{operation.method.upper()} {operation.path}: {exc}")
