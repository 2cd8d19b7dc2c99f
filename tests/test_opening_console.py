"""The bid opening on the console: staff keep the opening record (attendance, decryption, price
and the venue's columns), enter each bidder's confirmation or objection (an objection also goes
to the objections register); a supervisor signs it off; the evaluation then takes its prices
from it."""

import json

from appliance.evaluation import opening
from appliance.siteops.plan import load_plan, parse_plan
from tests.helpers import csrf_token
from tests.test_site_operations import plan_text


def test_an_opening_kept_confirmed_and_signed_off_on_the_console(web_site, login):
    plan = json.loads(plan_text())
    plan["sessions"][0]["bidders"].append({"id": "B3", "name": "某某路桥有限公司"})
    load_plan(web_site, parse_plan(json.dumps(plan, ensure_ascii=False)))
    staff, supervisor = login("staff"), login("supervisor")
    page = staff.get("/opening/S-0922-01").get_data(as_text=True)
    assert 'id="record-opening"' in page and "工期（日历天）" in page
    assert 'id="record-opening"' not in supervisor.get("/opening/S-0922-01").get_data(as_text=True)  # staff keep it
    token = csrf_token(staff.get("/opening/S-0922-01"))
    form = {"csrf_token": token,
            "B1|attendance": "onsite", "B1|decryption": "decrypted", "B1|price": "1000000", "B1|col0": "300", "B1|col1": "王某",
            "B2|attendance": "remote", "B2|decryption": "decrypted", "B2|price": "abc",
            "B3|attendance": "absent", "B3|decryption": "failed", "B3|price": ""}
    page = staff.post("/opening/S-0922-01/record", data=form, follow_redirects=True).get_data(as_text=True)
    assert "B2.price" in page and not web_site.journal.records(kind="opening.recorded")  # a price that is no number: nothing kept
    form["B2|price"] = "900000.50"
    staff.post("/opening/S-0922-01/record", data=form)
    recorded = web_site.journal.records(kind="opening.recorded")[-1].payload
    assert [(r["bidder"], r["attendance"], r["decryption"], r["price"]) for r in recorded["rows"]] == [
        ("B1", "onsite", "decrypted", "1000000"), ("B2", "remote", "decrypted", "900000.50"), ("B3", "absent", "failed", None)]
    assert recorded["rows"][0]["fields"] == [{"name": "工期（日历天）", "value": "300"}, {"name": "项目经理", "value": "王某"}]
    page = staff.get("/opening/S-0922-01").get_data(as_text=True)
    assert 'id="confirm-B1"' in page and 'id="confirm-B3"' not in page  # the absent bidder is deemed to accept
    staff.post("/opening/S-0922-01/confirm/B1", data={"csrf_token": token, "agrees": "yes"})
    # The supervisor cannot sign off while B2 has not answered.
    token_s = csrf_token(supervisor.get("/opening/S-0922-01"))
    page = supervisor.post("/opening/S-0922-01/sign-off", data={"csrf_token": token_s}, follow_redirects=True).get_data(as_text=True)
    assert "not answered: B2" in page
    staff.post("/opening/S-0922-01/confirm/B2", data={"csrf_token": token, "agrees": "no", "reason": "报价应为900000元"})
    objection = web_site.journal.records(kind="register.objection")[-1].payload
    assert (objection["raised_by"], objection["content"]) == ("某某工程有限公司", "报价应为900000元")
    assert staff.post("/opening/S-0922-01/sign-off", data={"csrf_token": token}).status_code == 403  # a supervisor's act
    page = supervisor.post("/opening/S-0922-01/sign-off", data={"csrf_token": token_s}, follow_redirects=True).get_data(as_text=True)
    assert 'id="signed-off"' in page and "supervisor1" in page
    bids = opening.bids_for_evaluation(web_site, "JL2026-GC-0117-01")
    assert [(b["bidder"], b["valid"]) for b in bids] == [("B1", True), ("B2", True), ("B3", False)]
    assert "开标" in supervisor.get("/committee/").get_data(as_text=True)
