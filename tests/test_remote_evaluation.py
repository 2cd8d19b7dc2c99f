"""A remote evaluation (远程异地评标): one committee seated at two venues, linked through the
center. Two real appliances (their own data folders, keys and web apps), the center on
loopback over HTTP with PostgreSQL, the relay's threads at both venues; the secondary venue's
link runs through a proxy that is cut mid-step and restored. Members sign in at their own
venue's terminals, act on their screens (the web app), and every journal verifies."""

import base64
import copy
import hashlib
import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from appliance.clock import FixedClock
from appliance.evaluation import committee as ev
from appliance.evaluation import remote, terminal
from appliance.kiosks import Kiosks
from appliance.site import init_site, open_site
from appliance.siteops.plan import PlanError, load_plan, parse_plan
from appliance.siteops.sessions import change_state
from appliance.verify import verify_journal
from kiosk_ui import create_app
from sync.agent import Agent, SyncError, enroll
from sync.relay import RelayLink
from tests import faultproxy
from tests.helpers import csrf_token, free_port
from tests.test_evaluation import BIDS, SESSION, TEMPLATE
from tests.test_kiosk_checkin import LOCKERS
from tests.test_site_operations import DEVICES, NOW, PLAN
from tests.test_sync import center  # noqa: F401  (the center on loopback)
from tests.venue import card_of, enter_evaluation_area

MAIN, SECONDARY = "test-county-01", "test-county-02"
HERE, THERE = ("P01", "P02", "P03"), ("P04", "P06")


def plans() -> tuple[dict, dict]:
    """The main venue's plan (every member, P04 and P06 seated at the secondary venue) and the
    secondary venue's (its own members only), as the trading system would publish them."""
    remote_block = {"main": MAIN, "venues": [{"site": MAIN, "name": "测试县公共资源交易中心"},
                                             {"site": SECONDARY, "name": "邻县公共资源交易中心"}]}
    main = copy.deepcopy({**PLAN, "site_id": MAIN})
    main["sessions"] = [s for s in main["sessions"] if s["id"] == SESSION]
    session = main["sessions"][0]
    session["bidders"].append({"id": "B3", "name": "某某路桥有限公司"})
    session["remote"] = remote_block
    for entry in session["roster"]:
        if entry["person"] in THERE:
            entry["venue"] = SECONDARY
    secondary = copy.deepcopy(main)
    secondary["site_id"] = SECONDARY
    secondary["rooms"] = [{**r, "kind": "remote_evaluation"} if r["id"] == "PB1" else r for r in secondary["rooms"]]
    secondary["sessions"][0]["roster"] = [{"person": p, "role": r} for p, r in (("P04", "expert"), ("P06", "tenderer_representative"),
                                                                               ("P08", "supervisor"))]
    secondary["people"] = [p for p in secondary["people"] if p["id"] in ("P04", "P06", "P08")]
    return main, secondary


def test_a_plan_names_remote_venues_and_seats_members_only_where_it_may(data_dir):
    main, secondary = plans()
    parse_plan(json.dumps(main, ensure_ascii=False))
    bad = copy.deepcopy(secondary)
    bad["sessions"][0]["roster"].append({"person": "P04", "role": "witness", "venue": MAIN})
    with pytest.raises(PlanError, match="names only its own members"):
        parse_plan(json.dumps(bad, ensure_ascii=False))
    bad = copy.deepcopy(main)
    bad["sessions"][0]["roster"][0]["venue"] = "nowhere"
    with pytest.raises(PlanError, match="not a venue of the committee"):
        parse_plan(json.dumps(bad, ensure_ascii=False))
    site = open_site(data_dir)
    try:  # loaded by staff without the center, a venue's key must be in the file
        with pytest.raises(PlanError, match=r"remote\.venues\.test-county-01\.public_key"):
            load_plan(site, parse_plan(json.dumps(main, ensure_ascii=False)))
    finally:
        site.close()


def test_a_nested_write_is_a_savepoint(site):
    with site.store.transaction() as conn:
        site.journal.append(conn, "staff.note", {"text": "kept"})
        with pytest.raises(ValueError):
            with site.store.transaction():
                site.journal.append(conn, "staff.note", {"text": "undone"})
                raise ValueError("refused")
        site.journal.append(conn, "staff.note", {"text": "also kept"})
    assert [r.payload["text"] for r in site.journal.records(kind="staff.note")] == ["kept", "also kept"]


class Venue:
    def __init__(self, site, app, relay):
        self.site, self.app, self.relay = site, app, relay
        self.desks: dict[str, object] = {}

    def seat(self, ref: str, desk: int) -> None:
        """A member through the gate and signed in by card at desk N of the evaluation room."""
        enter_evaluation_area(self.site, ref)
        kiosk = self.site.store.reader().execute("SELECT id FROM kiosks WHERE name = ?", (f"PB1-{desk}",)).fetchone()[0]
        t = terminal.Terminal(kiosk, f"PB1-{desk}", "PB1", None)
        assert terminal.card_sign_in(self.site, t, id_number=card_of(ref).id_number, card_valid=True)["outcome"] == "signed_in"

    def page(self, ref: str) -> str:
        return self.desks[ref].get("/evaluation/").get_data(as_text=True)

    def post(self, ref: str, path: str, **data):
        client = self.desks[ref]
        screen = client.get("/evaluation/")
        drawn = re.search(r'name="seat" value="([^"]*)"', screen.get_data(as_text=True))
        return client.post(path, data={"csrf_token": csrf_token(screen), "seat": drawn.group(1) if drawn else "", **data})


def wait_for(what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what.__doc__ or what}")


@pytest.fixture
def venues(tmp_path, center):  # noqa: F811
    c, url = center
    main_plan, secondary_plan = plans()
    proxy_port = free_port()
    proxy = faultproxy.start(proxy_port, ("127.0.0.1", int(url.rsplit(":", 1)[1])), seed=0, fault_rate=0.0)
    out = {}
    for site_id, plan, link in ((MAIN, main_plan, url), (SECONDARY, secondary_plan, f"http://127.0.0.1:{proxy_port}")):
        data = tmp_path / site_id
        init_site(data, site_id, site_id)
        config = data / "appliance.toml"
        config.write_text(config.read_text() + DEVICES + LOCKERS, encoding="utf-8")
        site = open_site(data, clock=FixedClock(NOW))
        enroll(site, link, c.add_site(site_id))
        out[site_id] = site
    for site_id, plan in ((MAIN, main_plan), (SECONDARY, secondary_plan)):
        c.add_item(site_id, "day_plan", plan)  # the center fills in each venue's key
        Agent(out[site_id]).sync_once()
    made = {}
    for site_id, site in out.items():
        change_state(site, SESSION, "admitting", by="staff1")
        app = create_app(site)
        venue = Venue(site, app, RelayLink(site).start())
        for desk in (1, 2, 3):
            code = Kiosks(site).add(f"PB1-{desk}", "evaluation", room="PB1")
            client = app.test_client()
            client.post("/kiosk/enrol", data={"code": code, "csrf_token": csrf_token(client.get("/kiosk/enrol"))})
            venue.desks[(HERE if site_id == MAIN else THERE + ("",))[desk - 1]] = client
        made[site_id] = venue
    link = {"port": proxy_port, "pid": proxy, "upstream": int(url.rsplit(":", 1)[1])}
    yield made[MAIN], made[SECONDARY], link, c
    if link["pid"]:
        faultproxy.stop(link["pid"])
    for venue in made.values():
        venue.relay.stop()
        venue.app.extensions["live"].stop()
        venue.site.close()


def test_one_committee_at_two_venues_through_the_center_with_the_link_cut_mid_step(venues):
    main, secondary, proxy, c = venues
    ev.start(main.site, SESSION, TEMPLATE, BIDS, by="staff1")
    for desk, ref in enumerate(HERE, start=1):
        main.seat(ref, desk)
    # The secondary venue's terminals invite a sign-in once the main venue's screens arrive.
    wait_for(lambda: terminal.current_session(secondary.site.store.reader(), "PB1"))
    # A member seated at the other venue cannot sign in here; one of this venue cannot there.
    p04_here = main.site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P04'").fetchone()[0]
    enter_evaluation_area(main.site, "P04")
    t = terminal.Terminal(1, "PB1-1", "PB1", None)
    assert terminal.card_sign_in(main.site, t, id_number=card_of("P04").id_number, card_valid=True)["outcome"] == "other_venue"
    for desk, ref in enumerate(THERE, start=1):
        secondary.seat(ref, desk)
    wait_for(lambda: all(r[0] for r in main.site.store.reader().execute(
        "SELECT signed_in FROM eval_members WHERE session = ?", (SESSION,))))
    # Every member reads the project information on their own screen; the vote opens.
    for ref in HERE:
        main.post(ref, "/evaluation/read")
    for ref in THERE:
        assert secondary.post(ref, "/evaluation/read").status_code == 302
    wait_for(lambda: ev._state(main.site.store.reader(), SESSION)[0] == "electing")
    wait_for(lambda: "选举评标委员会主任" in secondary.page("P04") or "主任" in secondary.page("P04"))
    chair = main.site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P01'").fetchone()[0]
    for ref in HERE:
        main.post(ref, "/evaluation/vote", candidate=str(chair))
    for ref in THERE:  # the candidate as the main venue's screen names them
        secondary.post(ref, "/evaluation/vote", candidate=str(chair))
    wait_for(lambda: ev._state(main.site.store.reader(), SESSION) == ("evaluating", chair))
    page = wait_for(lambda: (lambda p: p if "qualification" in p or "资格" in p else None)(secondary.page("P04")))
    assert "测试县公共资源交易中心" in page and "邻县公共资源交易中心" in page  # each member with their venue
    assert p04_here != chair

    # The first step: everyone marks; then the secondary venue's link is cut mid-step.
    step = TEMPLATE["steps"][0]
    marks = {f"m|{b}|{cr['id']}": "pass" for b in ("B1", "B2", "B3") for cr in step["criteria"]}
    for ref in HERE:
        main.post(ref, f"/evaluation/steps/{step['id']}/marks", action="submit", **marks)
    secondary.post("P04", f"/evaluation/steps/{step['id']}/marks", action="submit", **marks)
    wait_for(lambda: main.site.store.reader().execute("SELECT COUNT(*) FROM eval_step_submissions WHERE session = ?",
                                                      (SESSION,)).fetchone()[0] == 4)
    faultproxy.stop(proxy["pid"])
    proxy["pid"] = None
    cut = time.monotonic()
    wait_for(lambda: remote.away(main.site.store.reader(), SESSION) and remote.away(secondary.site.store.reader(), SESSION), 6)
    paused_after = time.monotonic() - cut
    assert "评标委员会已暂停" in main.page("P01") and "评标委员会已暂停" in secondary.page("P06")
    # During the cut: the committee refuses its work because it is paused (not for another
    # reason), the chair's confirmation does nothing, P06's submission is held.
    from appliance.evaluation import actions

    with pytest.raises(ev.EvaluationError) as refused:
        actions.perform(main.site, SESSION, chair, "confirm", {"step": step["id"]})
    assert refused.value.code == "committee_paused"
    from appliance.evaluation import report

    with pytest.raises(ev.EvaluationError) as not_issued:  # nor the report
        report.issue(main.site, SESSION)
    assert not_issued.value.code == "committee_paused"
    main.post("P01", f"/evaluation/steps/{step['id']}/confirm")
    assert "评标委员会已暂停：远程异地评标的一个场地未连接" in main.page("P01")  # the refusal, said on the screen
    assert ev._state(main.site.store.reader(), SESSION)[0] == "evaluating"
    assert main.site.store.reader().execute("SELECT state FROM eval_steps WHERE session = ? AND step = ?",
                                            (SESSION, step["id"])).fetchone()[0] == "open"
    secondary.post("P06", f"/evaluation/steps/{step['id']}/marks", action="submit", **marks)
    assert "尚未送达" in secondary.page("P06")
    held = secondary.site.store.reader().execute("SELECT COUNT(*) FROM remote_actions WHERE state = 'held'").fetchone()[0]
    assert held == 1
    # The link returns: the held action is delivered once, applied, acknowledged; the committee resumes.
    proxy["pid"] = faultproxy.start(proxy["port"], ("127.0.0.1", proxy["upstream"]), seed=0, fault_rate=0.0)
    wait_for(lambda: main.site.store.reader().execute("SELECT COUNT(*) FROM eval_step_submissions WHERE session = ?",
                                                      (SESSION,)).fetchone()[0] == 5)
    wait_for(lambda: not remote.away(main.site.store.reader(), SESSION))
    main.post("P01", f"/evaluation/steps/{step['id']}/confirm")
    wait_for(lambda: main.site.store.reader().execute("SELECT state FROM eval_steps WHERE session = ? AND step = ?",
                                                      (SESSION, step["id"])).fetchone()[0] == "confirmed")
    wait_for(lambda: secondary.site.store.reader().execute(
        "SELECT COUNT(*) FROM remote_actions WHERE state != 'applied'").fetchone()[0] == 0)
    # The secondary venue holds the committee's confirmation in its own journal, signed by the main venue.
    wait_for(lambda: any(r.payload["kind"] == "evaluation.step_confirmed"
                         for r in secondary.site.journal.records(kind="evaluation.remote_record")))

    # Evidence: each action once at each venue; every journal verifies.
    sent = secondary.site.journal.records(kind="evaluation.remote_action")
    received = main.site.journal.records(kind="evaluation.remote_received")
    assert sorted(r.payload["origin_seq"] for r in received) == [r.seq for r in sent]
    answered = {r.payload["origin_seq"]: r.payload["outcome"] for r in main.site.journal.records(kind="evaluation.remote_answered")}
    assert answered == {r.seq: "applied" for r in sent}
    for venue in (main, secondary):
        result = verify_journal(venue.site.store.reader(), venue.site.config.site.id, venue.site.public_key)
        assert result.ok, result.as_json()
    relayed = c.db.value("SELECT COUNT(*) FROM relay WHERE kind = 'record'")
    assert relayed >= len(sent) + len(secondary.site.journal.records(kind="evaluation.remote_record"))
    # The members seated at the secondary venue are that venue's to admit: the main venue never
    # flags them as no-shows (they never pass its gates).
    from datetime import timedelta

    from appliance.siteops.noshow import flag_no_shows

    main.site.clock.advance(timedelta(minutes=50))  # past the start and its grace time
    assert flag_no_shows(main.site) == 0
    print(f"paused at both venues {paused_after:.2f} s after the cut; {len(sent)} actions relayed, {held} held")


def test_the_center_relays_only_what_a_venue_of_the_session_signed(venues, tmp_path):
    main, secondary, _, c = venues
    agent = Agent(secondary.site)
    record = secondary.site.store.reader().execute("SELECT body, sig FROM journal WHERE kind = 'session.state'").fetchone()
    forged = {"kind": "record", "session": SESSION, "body": record[0].replace("admitting", "in_progress"), "sig": record[1]}
    with pytest.raises(SyncError, match="bad_signature"):
        agent._post("relay/send", {"messages": [forged]})
    # A record of the venue's own, but not of the session it names: refused before anything is stored.
    other = secondary.site.store.reader().execute("SELECT body, sig FROM journal WHERE kind = 'plan.loaded'").fetchone()
    with pytest.raises(SyncError, match="bad_request"):
        agent._post("relay/send", {"messages": [{"kind": "record", "session": SESSION, "body": other[0], "sig": other[1]}]})
    # A venue that is not one of the session's may not relay for it, even what it signed itself.
    init_site(tmp_path / "third", "test-county-03", "第三县")
    third = open_site(tmp_path / "third")
    try:
        enroll(third, main.site.store.get_meta("sync_center_url"), c.add_site("test-county-03"))
        own = third.journal.record("session.state", {"session": SESSION, "from": "scheduled", "to": "admitting", "by": "x"})
        body, sig = third.store.reader().execute("SELECT body, sig FROM journal WHERE seq = ?", (own.seq,)).fetchone()
        with pytest.raises(SyncError, match="not_a_venue"):
            Agent(third)._post("relay/send", {"messages": [{"kind": "record", "session": SESSION, "body": body, "sig": sig}]})
    finally:
        third.close()
    assert c.db.value("SELECT COUNT(*) FROM relay WHERE body LIKE %s", ("%in_progress%",)) == 0
    # Had the center passed it on, the main venue would refuse it too, and journal that it did.
    relay = RelayLink(main.site)
    assert relay._take({"seq": 999, "kind": "record", "session": SESSION, "from": SECONDARY, **{k: forged[k] for k in ("body", "sig")}})
    refused = main.site.journal.records(kind="evaluation.remote_refused")[-1].payload
    assert (refused["from"], refused["relay_seq"], refused["sha256"]) == (SECONDARY, 999, hashlib.sha256(forged["body"].encode()).hexdigest())
    assert "does not verify" in refused["reason"]
    for bad in ({"messages": "all of them"}, {"messages": [forged] * 201}, {},
                {"messages": [{**forged, "kind": "video"}]}, {"messages": [{**forged, "body": 7}]}):
        with pytest.raises(SyncError, match="bad_request"):  # a clear refusal, nothing stored
            agent._post("relay/send", bad)
    with pytest.raises(SyncError, match="bad_request"):
        agent._post("relay/poll", {"after": -1})
    with pytest.raises(SyncError, match="bad_request"):
        agent._post("relay/poll", {"after": 0, "wait_s": 3600})


def test_the_simulated_remote_evaluation_loses_and_duplicates_nothing(tmp_path):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from appliance.signing import record_message
    from tests.helpers import json_line, run_appliance

    folder = tmp_path / "remote"
    result = run_appliance("simulate", "remote-evaluation", "--folder", str(folder), "--cut-s", "2", timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json_line(result.stdout)
    assert summary["state"] == "finalized" and summary["report_pdf_sha256"]
    assert summary["members_by_venue"] == {"长白县公共资源交易中心": ["P01", "P02", "P03"], "临江市公共资源交易中心": ["P04", "P06"]}
    assert (summary["link_cuts"], summary["actions_lost"], summary["duplicates"]) == (1, 0, 0) and summary["actions_held"] == 1
    assert all(j["verified"] for j in summary["journals"].values()) and len(summary["journals"]) == 3
    # The remote session's evidence package holds both venues' records and keys and verifies
    # offline; one byte changed anywhere in it and it does not.
    package = Path(summary["evidence"]["file"])
    checked = run_appliance("evidence", "verify", str(package))
    assert checked.returncode == 0, checked.stdout[-2000:]
    report = json_line(checked.stdout)
    assert [(v["site"], v["main"], v["ok"]) for v in report["venues"]] == [("demo-remote-main", True, True),
                                                                         ("demo-remote-second", False, True)]
    assert report["embedded_records_checked"] > 20 and report["actions"] == report["actions_answered"] == summary["actions_relayed"]
    # The same with standard tools alone, as docs/evidence.md writes it: the remote block, then
    # each venue's package with the package block; remote.json changed by one word fails.
    import subprocess
    import zipfile

    from tests.test_evidence_docs import REMOTE_BLOCK, run_doc_block

    def remote_block(zip_path, folder):
        folder.mkdir()
        return subprocess.run(["sh", "-e", "-c", REMOTE_BLOCK.replace("../remote.zip", str(zip_path))], cwd=folder,
                              capture_output=True, text=True, timeout=300)

    done = remote_block(package, tmp_path / "by-hand")
    assert done.returncode == 0 and "embedded records verified:" in done.stdout, done.stderr[-2000:]
    for site_id in ("demo-remote-main", "demo-remote-second"):
        inner = tmp_path / "by-hand" / "venues" / f"{site_id}.zip"
        assert run_doc_block(tmp_path / f"by-hand-{site_id}", inner).returncode == 0
    renamed = tmp_path / "renamed.zip"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(renamed, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            dst.writestr(info, body.replace("临江市".encode(), "临江县".encode()) if info.filename == "remote.json" else body)
    assert remote_block(renamed, tmp_path / "by-hand-renamed").returncode != 0
    assert run_appliance("evidence", "verify", str(renamed)).returncode == 1
    # A hostile package (signed by some key, shaped wrongly) is named as such, never a traceback.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from appliance.evidence_format import REMOTE_MANIFEST_CONTEXT

    with zipfile.ZipFile(package) as src:
        good = json.loads(src.read("remote.json"))
        inner = {i.filename: src.read(i) for i in src.infolist() if i.filename.startswith("venues/")}
    forger = Ed25519PrivateKey.generate()
    twice = [good["venues"][0], good["venues"][0]]
    shapes = "at least two venues, each once"
    for n, (shaped, why) in enumerate((({**good, "venues": twice}, shapes), ({**good, "venues": "all"}, "not a site-appliance"),
                                       ({**good, "venues": [good["venues"][0]]}, shapes),
                                       ({**good, "venues": [{**good["venues"][0], "package": "remote.json"}, good["venues"][1]]}, shapes),
                                       ({**good, "main": ["x"]}, shapes), ({**good, "main": good["venues"][1]["site"]}, shapes),
                                       ("not an object", "unreadable"))):
        body = json.dumps(shaped).encode()
        hostile = tmp_path / f"hostile-{n}.zip"
        with zipfile.ZipFile(hostile, "w") as dst:
            dst.writestr("remote.json", body)
            dst.writestr("remote.sig", base64.b64encode(forger.sign(REMOTE_MANIFEST_CONTEXT + hashlib.sha256(body).digest())))
            dst.writestr("center.pub", forger.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
            for name, part in inner.items():
                dst.writestr(name, part)
        refused = run_appliance("evidence", "verify", str(hostile))
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, (n, refused.stderr[-1000:])
        assert why in json_line(refused.stdout)["problems"][0], (n, json_line(refused.stdout)["problems"])
    data = bytearray(package.read_bytes())
    for at in (len(data) // 3, 2 * len(data) // 3, len(data) - 200):
        bad = tmp_path / f"altered-{at}.zip"
        bad.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
        altered = run_appliance("evidence", "verify", str(bad))
        assert altered.returncode == 1 and not json_line(altered.stdout)["ok"], (at, altered.stdout[-1000:])
    # Independently of the code that made them: the secondary venue's journal embeds the main
    # venue's committee records, each verifying with the main venue's key (docs/remote-evaluation.md).

    main_key = load_pem_public_key((folder / "demo-remote-main" / "keys" / "site.pub").read_bytes())
    second = open_site(folder / "demo-remote-second")
    try:
        embedded = [json.loads(r.payload["record"]["body"]) | {"sig": r.payload["record"]["sig"],
                                                                "raw": r.payload["record"]["body"]}
                    for r in second.journal.records(kind="evaluation.remote_record")]
        assert {"evaluation.results", "evaluation.remote_answered", "evaluation.step_confirmed"} <= {e["kind"] for e in embedded}
        for e in embedded:
            assert e["site"] == "demo-remote-main"
            main_key.verify(base64.b64decode(e["sig"]), record_message(hashlib.sha256(e["raw"].encode()).digest()))
        actions = second.journal.records(kind="evaluation.remote_action")
        signed = [r.payload["args"] for r in actions if r.payload["action"] == "sign"]
        assert len(signed) == 2 and all(len(a["signature_sha256"]) == 64 and "signature_png" not in a for a in signed)
        assert b"iVBORw0KGgo" not in (folder / "demo-remote-second" / "appliance.db").read_bytes()  # no PNG in clear
        own = {r.seq for r in actions}
        answers = {e["payload"]["origin_seq"]: e["payload"]["outcome"] for e in embedded if e["kind"] == "evaluation.remote_answered"}
        assert answers == {seq: "applied" for seq in own}  # every action acknowledged, once, in this venue's own journal
    finally:
        second.close()
    from appliance.evaluation import report

    main = open_site(folder / "demo-remote-main")
    try:  # the report lists each member with the venue they sat at
        content = report.content(main, "S-0922-02")
        assert Counter(m["venue"] for m in content["members"]) == {"长白县公共资源交易中心": 3, "临江市公共资源交易中心": 2}
        assert content["remote"] == {"main": "长白县公共资源交易中心", "others": ["临江市公共资源交易中心"]}
        html = report.render_html(content)
        assert "远程异地评标：主会场 长白县公共资源交易中心" in html
        # Each venue's supervisor signed for that venue's part (the secondary's through the relay).
        assert {v["name"]: [s["supervisor"] for s in v["signoffs"]] for v in content["venue_signoffs"]} == {
            "长白县公共资源交易中心": ["supervisor-demo-remote-main"], "临江市公共资源交易中心": ["supervisor-demo-remote-second"]}
        assert "各评标场地监督人员签认" in html and "supervisor-demo-remote-second" in html
        signed = [r.payload for r in main.journal.records(kind="evaluation.venue_signed")]
        assert [(p["venue"], len(p["members"])) for p in signed] == [("demo-remote-main", 3), ("demo-remote-second", 2)]
        # Once a venue is signed off, its members' signatures are final.
        from tests.helpers import png_bytes

        p04 = main.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P04'").fetchone()[0]
        with pytest.raises(ev.EvaluationError) as final:
            report.sign(main, "S-0922-02", p04, agrees=False, signature_png=png_bytes(), dissent="改变主意")
        assert final.value.code == "venue_signed_off"
        # A supervisor checks the remote package in the review room, in words.
        import io

        from tests.test_review_footage import supervisor

        app, client = supervisor(main)
        try:
            for data, ok, said in ((package.read_bytes(), "yes", "本场地是其中一个评标场地"),
                                   (renamed.read_bytes(), "no", "场地清单（remote.json）不完整、被改动")):
                page = client.post("/review/evidence/verify", data={"csrf_token": csrf_token(client.get("/review/evidence/verify")),
                                                                   "file": (io.BytesIO(data), "remote.zip")},
                                   content_type="multipart/form-data").get_data(as_text=True)
                assert f'data-ok="{ok}"' in page and said in page, page[-3000:]
                assert ok == "no" or ("长白县公共资源交易中心（主会场）" in page and "远程异地评标证据包" in page)
        finally:
            app.extensions["live"].stop()
    finally:
        main.close()
    again = run_appliance("simulate", "remote-evaluation", "--folder", str(folder))
    assert again.returncode == 2 and "not empty" in again.stderr
