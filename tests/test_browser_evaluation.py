"""A whole evaluation in Debian's chromium against `appliance run`: five committee members (four
experts and the tenderer's representative), each at a terminal of room PB1 signed in by a card
tapped on its desk reader (SAM simulators on pseudo-terminals); staff start the evaluation and
answer for the clarification room; a supervisor approves a reopening. On the way: a tied chair
vote and the re-vote, two pass/fail steps, a score refused until explained, a reopened step, a
clarification with its broadcast call, the price step, opinions with a revision, the results,
every member's signature (one dissenting) and the issued PDF."""

import hashlib
import json
import re

import pytest

from appliance.accounts import Accounts
from appliance.evaluation import committee, opening
from appliance.site import open_site
from tests.browser import chromium, draw_signature, log_in
from tests.test_runtime import PASSWORD
from tests.venue import ROOT, build_venue, card_of, enter_evaluation_area, served

SESSION = "S-0922-02"
MEMBERS = ("P01", "P02", "P03", "P04", "P06")
MASKED = {"P01": "王**", "P02": "李**", "P03": "赵**", "P04": "钱**", "P06": "周**"}
TEMPLATE = json.loads((ROOT / "demo" / "evaluation" / "template.json").read_text(encoding="utf-8"))
SCORES = {  # (B1 plan, B1 schedule, B2 plan, B2 schedule) per member
    "P01": ("36", "25", "30", "27"), "P02": ("38", "26", "32", "28"), "P03": ("35", "24", "31", "27"),
    "P04": ("37", "25", "33", "26"), "P06": ("36", "25", "12", "27")}


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    venue = build_venue(tmp_path_factory.mktemp("evaluation"), desks=len(MEMBERS))
    with open_site(venue.data) as site:
        for name, role in (("staff1", "staff"), ("supervisor1", "supervisor")):
            Accounts(site).add(name, role, PASSWORD)
        for ref in MEMBERS:  # through the gate (commitment, locker) before sitting down
            enter_evaluation_area(site, ref)
        opening.open_bids(site, "S-0922-01", [{"bidder": "B1", "price": "1000000"}, {"bidder": "B2", "price": "900000"}],
                          by="staff1")
        for bidder in ("B1", "B2"):
            opening.confirm(site, "S-0922-01", bidder, agrees=True, by=f"{bidder} 代表")
        opening.sign_off(site, "S-0922-01", supervisor="supervisor1")
        committee.load_template(site, json.loads(json.dumps(TEMPLATE)), by="staff1")
    with served(venue) as base:
        yield venue, base


def journal(page, base, kind):
    """The payloads of the journal's records of this kind, through the API as the page's user."""
    return [r["payload"] for r in page.request.get(f"{base}/api/v1/journal?kind={kind}").json()["records"]]


def settle(page):
    """Until the terminal shows what the server has now: it reloads itself when the evaluation
    moves on, and a click landing on a page that is being replaced would be lost."""
    for _ in range(200):
        try:
            if page.evaluate("""async () => {
                    const el = document.getElementById('terminal');
                    if (!el || document.readyState !== 'complete') { return false; }
                    const r = await fetch('/evaluation/state', {credentials: 'same-origin'});
                    return (await r.json()).fingerprint === el.dataset.fingerprint; }"""):
                return page
        except Exception:  # the page navigated while we asked
            pass
        page.wait_for_timeout(100)
    raise AssertionError("the terminal never caught up: " + page.url)


def submit(page, *, all_pass=False):
    settle(page)
    page.wait_for_selector("#submit-step")
    if all_pass:
        page.click("#all-pass")
    page.click("#submit-step")
    page.wait_for_selector("#step-submitted")


def chair_confirms(chair):
    chair.wait_for_selector("#confirm-step:not([disabled])")
    settle(chair)
    chair.click("#confirm-step")
    chair.wait_for_load_state()


def vote(page, candidate, round_):
    page.wait_for_selector(f"#vote h2:has-text('第 {round_} 轮')")
    settle(page)
    page.check(f"#vote label.choice:has-text('{MASKED[candidate]}') input")
    page.click("#vote-submit")
    # Cast; the last vote of a round shows the next round, or the first step once a chair is elected.
    page.wait_for_selector(f"#voted, #vote h2:has-text('第 {round_ + 1} 轮'), #stage:has-text('资格审查')")


def test_a_whole_evaluation_by_five_members_at_their_terminals(venue):
    venue_, base = venue
    with chromium() as browser:
        def new_page():
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
            context.set_default_timeout(20000)
            return context.new_page()

        staff, supervisor = new_page(), new_page()
        log_in(staff, base, "staff1", PASSWORD)
        log_in(supervisor, base, "supervisor1", PASSWORD)

        # Staff start the evaluation with the template and the signed-off opening's prices.
        staff.goto(f"{base}/committee/{SESSION}")
        staff.select_option("#template", TEMPLATE["id"])
        staff.click("#start-evaluation")
        assert staff.locator("#evaluation-state").inner_text() == "签到中"

        # Each member taps the ID card on the desk reader; the terminal becomes theirs.
        desks = {}
        for i, ref in enumerate(MEMBERS):
            page = new_page()
            page.goto(base + "/kiosk/enrol")
            page.fill("input[name=code]", venue_.desk_codes[i])
            page.click("#enrol-submit")
            page.wait_for_url(base + "/evaluation/")
            assert "请在桌面读卡器上刷身份证签到" in page.locator("#terminal-instruction").inner_text()
            venue_.desks[i].place(card_of(ref))
            page.wait_for_selector("#member-name")
            venue_.desks[i].remove()
            assert page.locator("#member-name").inner_text() == MASKED[ref]
            desks[ref] = page
        for page in desks.values():
            settle(page).click("#confirm-read")

        # The chair: 2–2–1 elects nobody; the re-vote elects P02 with 3 of 5.
        for voter, candidate in (("P01", "P01"), ("P02", "P01"), ("P03", "P02"), ("P04", "P02"), ("P06", "P03")):
            vote(desks[voter], candidate, 1)
        for voter, candidate in (("P01", "P02"), ("P02", "P02"), ("P03", "P02"), ("P04", "P01"), ("P06", "P01")):
            page = desks[voter]
            page.wait_for_selector("#vote .revote")
            assert "第 1 轮：无人得票过半" in page.locator("#vote .revote").inner_text()
            vote(page, candidate, 2)
        chair = desks["P02"]
        chair.wait_for_selector("#chair-badge")
        assert "资格审查" in desks["P06"].locator("#stage").inner_text()

        # Qualification and compliance: everyone marks every item pass; the chair confirms each.
        for step in ("资格审查", "符合性审查"):
            for page in desks.values():
                page.wait_for_selector(f"#stage:has-text('{step}')")
                submit(page, all_pass=True)
            chair_confirms(chair)

        # Technical scores; P06's 12 for B2's plan is far below the others: refused until explained.
        for ref, page in desks.items():
            page.wait_for_selector("#stage:has-text('技术标评审')")
            settle(page)
            for name, value in zip(("B1|plan", "B1|schedule", "B2|plan", "B2|schedule"), SCORES[ref], strict=True):
                page.fill(f"input[name='m|{name}']", value)
            page.click("#submit-step")
            page.wait_for_load_state()
        p06 = desks["P06"]
        assert p06.locator("#step-submitted").count() == 0
        assert "须书面说明" in p06.locator(".flash").inner_text() and p06.locator("td.mark.alert").count() == 1
        p06.fill("input[name='x|B2|plan']", "施工方案未针对本工程深基坑编制专项措施")
        p06.click("#submit-step")
        p06.wait_for_selector("#step-submitted")
        chair_confirms(chair)

        # The chair asks to reopen the technical step; a supervisor approves on the committee page.
        chair.wait_for_selector("#stage:has-text('价格评审')")
        settle(chair)
        chair.select_option("#reopen-step", "technical")
        chair.fill("#reopen-form input[name=reason]", "B1 工期保证措施评分需复核")
        chair.click("#request-reopen")
        chair.wait_for_selector(".reopen-pending")
        supervisor.goto(f"{base}/committee/{SESSION}")
        supervisor.click("[id^=approve-reopen-]")
        assert "已由 supervisor1 批准" in supervisor.locator("#reopens").inner_text()
        for page in desks.values():  # the step is open again, with each member's marks kept
            page.wait_for_selector("#stage:has-text('技术标评审')")
            settle(page)
            assert page.input_value("input[name='m|B1|plan']") != ""
            page.click("#submit-step")
            page.wait_for_selector("#step-submitted")
        chair_confirms(chair)

        # A clarification: the chair's question calls B2 to the clarification room; staff register
        # the representative's visit and record the answer; every terminal shows it.
        chair.wait_for_selector("#stage:has-text('价格评审')")
        settle(chair)
        chair.select_option("#clarify-form select[name=bidder]", "B2")
        chair.fill("#clarify-form textarea[name=question]", "请澄清深基坑支护方案的监测频率。")
        chair.click("#ask-clarification")
        staff.goto(f"{base}/committee/{SESSION}")
        staff.click("[id^=visit-]")
        staff.fill("[id^=answer-]", "每日监测一次，变形超限时加密至每4小时一次。")
        staff.click("[id^=record-answer-]")
        desks["P03"].wait_for_selector("#clarifications .ok:has-text('每日监测一次')")
        calls = journal(staff, base, "announcement.played")
        assert any("请某某工程有限公司代表到答疑室" in p["text"] for p in calls), calls
        assert [(p["bidder"], p["people"]) for p in journal(staff, base, "register.clarification")] == [("B2", 1)]

        # The price step is computed; the chair confirms, then asks for opinions.
        assert chair.locator("#price-preview").inner_text().count("30.00") == 1
        chair_confirms(chair)
        chair.wait_for_selector("#ask-opinions")
        settle(chair)
        chair.click("#ask-opinions")

        # P01 revises B1's plan 36 → 39 with the reason; everyone agrees; the chair aggregates.
        p01 = desks["P01"]
        p01.wait_for_selector("#revise-B1-plan")
        settle(p01)
        p01.fill("#revise-B1-plan input[name=value]", "39")
        p01.fill("#revise-B1-plan input[name=reason]", "复核后认为方案针对性强")
        p01.click("#revise-B1-plan button")
        p01.wait_for_selector("#my-scores td.score:has-text('39.00')")
        for page in desks.values():
            page.wait_for_selector("#agree")
            settle(page)
            page.click("#agree")
            page.wait_for_selector("#agreed")
        chair.wait_for_selector("#finalize:not([disabled])")
        settle(chair)
        chair.click("#finalize")

        # Results (trimmed means per criterion, ratio-to-lowest price): B1 89.00, B2 88.00.
        for page in desks.values():
            page.wait_for_selector("#results")
        rows = [r.inner_text().split("\t") for r in chair.locator("#results tbody tr").all()]
        assert [(r[0], r[1], r[4]) for r in rows] == [("1", "某某建设有限公司", "89.00"), ("2", "某某工程有限公司", "88.00")]

        # Every member signs the report; P04 dissents with reasons. Then the chair issues it.
        for ref, page in desks.items():
            settle(page)
            if ref == "P04":
                page.check("#opinion-dissent")
                page.fill("#sign-form textarea[name=dissent]", "B2技术方案评分偏低")
            draw_signature(page)
            page.click("#sign-report")
            page.wait_for_selector("#report-signed, #report-issued")
        chair.wait_for_selector("#issue-report:not([disabled])")
        settle(chair)
        chair.click("#issue-report")
        chair.wait_for_selector("#report-issued", timeout=60000)
        shown = re.search(r"[0-9a-f]{64}", chair.locator("#report-issued").inner_text()).group(0)

        # The supervisor downloads the PDF: its hash is the one journaled and shown.
        supervisor.goto(f"{base}/committee/{SESSION}")
        pdf = supervisor.request.get(base + supervisor.get_attribute("#report-pdf", "href")).body()
        assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == shown
        issued = journal(supervisor, base, "evaluation.report")[-1]
        assert issued["pdf_sha256"] == shown and issued["dissents"] == 1
        rounds = [p["chair"] for p in journal(supervisor, base, "evaluation.vote_round")]
        assert rounds[0] is None and rounds[1] is not None
        assert [(p["from"], p["to"]) for p in journal(supervisor, base, "evaluation.revised")] == [("36.00", "39.00")]
        taps = journal(supervisor, base, "evaluation.terminal_tap")
        # each member signed in at a terminal of their own (a card left on a reader is read again: same seat)
        assert sorted({p["terminal"] for p in taps if p["outcome"] == "signed_in"}) == [f"PB1-{i}" for i in range(1, 6)]

        # Item 11 (issue 14): the report sealed, a member signs out; the terminal says the
        # evaluation is over instead of inviting a sign-in, and a card tapped again is told so.
        page = desks["P01"]
        settle(page).click("#sign-out")
        page.wait_for_selector("#terminal-instruction")
        assert page.locator("#terminal-instruction").inner_text() == "本场评标已结束"
        assert "评标报告已签署并封存" in page.locator("#terminal").inner_text()
        i = MEMBERS.index("P01")
        venue_.desks[i].place(card_of("P01"))
        page.wait_for_selector("#tap-message:not([hidden])")
        venue_.desks[i].remove()
        assert page.locator("#tap-message").inner_text() == "本场评标已结束，评标报告已封存"
        assert page.locator("#member-name").count() == 0
