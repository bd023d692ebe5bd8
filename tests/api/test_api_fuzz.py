"""Schemathesis against the OpenAPI spec, CI-sized: no generated input may produce a 5xx.

Authenticated (a valid key) so the handlers behind the auth check are exercised, plus an
unauthenticated pass. The event stream is excluded (it never ends by design); ``?wait`` is capped
at 0.2 s so waiting requests stay cheap. The app is built at import (schemathesis needs the schema
at collection time) on a throwaway directory and closed after the module.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from src.api.app import create_app
from src.api.runtime import Runtime
from tests.api.conftest import add_key, api_settings


@schemathesis.serializer("message/rfc822")
def _raw_email(ctx, value):
    """Generated bodies for message/rfc822 go out as bytes (strings UTF-8 encoded)."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


_DIR = Path(tempfile.mkdtemp(prefix="triage-fuzz-"))
_RT = Runtime(
    api_settings(
        _DIR,
        max_wait_s=0.2,
        max_request_bytes=20_000,
        zendesk_webhook_secret="z",
        freshdesk_webhook_secret="f",
        intercom_client_secret="i",
    )
)
_APP = create_app(runtime=_RT)
_KEY = add_key(_RT, "fuzzer")
_RT.start_api()  # before the schema is loaded: loading runs the app's lifespan, which must not own _RT
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP).exclude(path="/v1/events")


atexit.register(shutil.rmtree, _DIR, True)
atexit.register(_RT.close)  # schemathesis' items do not share a module fixture scope: close at exit


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_on_generated_input(case):
    for headers in ({"Authorization": f"Bearer {_KEY}"}, {}):
        response = case.call(headers=headers)
        assert response.status_code < 500, (
            case.method,
            case.formatted_path,
            response.status_code,
            response.text[:300],
        )
