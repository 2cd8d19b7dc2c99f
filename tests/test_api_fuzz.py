"""Schemathesis against the API's OpenAPI document, over real HTTP on loopback: every generated
request is sent as each of the five roles; no 5xx, every response matches the documented
schema and status codes, invalid input is rejected with 400 and missing authentication with 401."""


import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from kiosk_ui.access import ROLES
from kiosk_ui.openapi import openapi_document


def _without_security(document):
    """The roles' real credentials come from the test's sessions; schemathesis must not add
    credentials of its own (random cookie values would override or shadow the real ones)."""
    document = {**document, "paths": {p: {m: {k: v for k, v in op.items() if k != "security"} for m, op in ops.items()}
                                      for p, ops in document["paths"].items()}}
    document.pop("security", None)
    return document


schema = schemathesis.openapi.from_dict(_without_security(openapi_document()))
COOKIE_NAMES = {"kiosk": "appliance_kiosk"}


@pytest.fixture
def server(app):
    from appliance.webserver import WebServer

    httpd = WebServer(app, "127.0.0.1", 0, threads=4, body_limit=app.extensions["body_limit"])
    httpd.start()
    yield f"http://127.0.0.1:{httpd.port}"
    httpd.stop()


@pytest.fixture
def sessions(login):
    out = {}
    for role in ROLES:
        client = login(role)
        session = requests.Session()
        name = COOKIE_NAMES.get(role, "appliance_session")
        cookie = client.get_cookie(name)
        if cookie:
            session.cookies.set(name, cookie.value)
        out[role] = session
    return out


def test_served_document_is_the_one_tested(server):
    assert requests.get(server + "/api/v1/openapi.json").json() == openapi_document()


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_for_every_role(case, server, sessions):
    for role, session in sessions.items():
        response = case.call_and_validate(base_url=server, session=session)
        assert response.status_code < 500, role
        if role == "anonymous" and case.method.upper() == "GET":
            assert response.status_code == 401  # no credentials: nothing but 401, whatever the input
