"""The authorization matrix, generated from the app's route map: every route × every role.

Each view declares its roles with `kiosk_ui.access.allow`; a route without a declaration makes
`test_every_route_has_a_rule` fail, so no route can slip in unguarded. For every other route,
every role gets the status its rule implies: allowed → not 401/403; anonymous → a redirect to
the login page (HTML) or 401 (API); any other role → 403.
"""

import pytest

from kiosk_ui.access import ROLES
from tests.helpers import csrf_token

SAMPLE_ARGS = {"bidder": "B1", "user_id": 1, "filename": "appliance.css", "prompt_id": 1, "session_id": "S-1", "name": "patrol",
               "entry_id": 1, "person_id": 1, "alarm_id": 1, "booking_id": 1, "segment_id": 1, "clarification_id": 1,
               "request_id": 1, "step": "technical", "kiosk_id": 1, "change": "code", "fmt": "xlsx"}  # user_id: see test_matrix
STREAMING = {"api.events"}


def sample_url(rule, args=SAMPLE_ARGS) -> str:
    return rule.build({arg: args[arg] for arg in rule.arguments})[1]


def routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_route_has_a_rule(app):
    missing = [r.endpoint for r, _ in routes(app)
               if r.endpoint != "static" and not hasattr(app.view_functions[r.endpoint], "allowed_roles")]
    assert missing == []


def test_matrix(app, login, web_site):
    from appliance.accounts import Accounts

    # Account actions in the matrix (disable, unlock...) act on a bystander, not on a client.
    from appliance.kiosks import Kiosks

    bystander = Accounts(web_site).add("bystander", "staff", "bystander-password")
    Kiosks(web_site).add("bystander-kiosk", "gate")
    kiosk_id = next(k["id"] for k in Kiosks(web_site).all() if k["name"] == "bystander-kiosk")
    args = {**SAMPLE_ARGS, "user_id": bystander.id, "kiosk_id": kiosk_id}
    clients = {role: login(role) for role in ROLES}
    tokens = {role: csrf_token(client.get("/kiosk/enrol")) for role, client in clients.items()}
    table = []
    for rule, method in routes(app):
        if rule.endpoint in STREAMING:
            continue
        allowed = ROLES if rule.endpoint == "static" else app.view_functions[rule.endpoint].allowed_roles
        for role in ROLES:
            client = clients[role]
            url = sample_url(rule, args)
            if method == "GET":
                resp = client.get(url)
            else:
                resp = client.post(url, data={"csrf_token": tokens[role]})
            if role in allowed:
                ok = resp.status_code not in (401, 403) and resp.status_code < 500
            elif role == "anonymous":
                ok = (resp.status_code == 401) if url.startswith("/api/") else (
                    resp.status_code == 302 and resp.location.startswith("/login"))
            else:
                ok = resp.status_code == 403
            table.append((method, rule.rule, role, resp.status_code, ok))
            # Logging out ends the client's session; log it back in for the next routes.
            if rule.endpoint == "auth.logout" and role in allowed:
                clients[role] = login(role)
                tokens[role] = csrf_token(clients[role].get("/kiosk/enrol"))
    wrong = [row for row in table if not row[4]]
    assert wrong == [], "\n".join(f"{m} {u} as {r}: {s}" for m, u, r, s, _ in wrong)
    assert len(table) >= 5 * 15


@pytest.mark.parametrize("role, path, expected", [
    ("supervisor", "/console/", 403),            # supervisors cannot reach staff-only screens
    ("staff", "/review/", 403),                  # and staff cannot reach the supervisors'
    ("staff", "/console/admin/users", 403),      # staff are not administrators
    ("kiosk", "/console/", 403),                 # a kiosk device is no person
    ("anonymous", "/api/v1/journal", 401),
])
def test_separation_of_duties(login, role, path, expected):
    assert login(role).get(path).status_code == expected


def test_staff_cannot_post_supervisor_actions(login):
    staff = login("staff")
    token = csrf_token(staff.get("/console/"))
    assert staff.post("/review/verify", data={"csrf_token": token}).status_code == 403
