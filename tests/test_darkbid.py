"""Dark-bid review: per-expert chapter orders from a sealed seed, committed before review,
marked by label, revealed and verified from the journal alone after the chair confirms."""

import hashlib
import itertools
import json
from collections import Counter

import pytest

from appliance.evaluation import committee as ev
from appliance.evaluation import darkbid
from tests.test_evaluation import BIDS, SESSION, TEMPLATE, people, site  # noqa: F401  (site is a fixture)


def test_orders_are_permutations_unbiased_enough_and_reproducible():
    items = ["B1", "B2", "B3"]
    seen = Counter(tuple(darkbid.shuffle(i.to_bytes(32, "big"), "7|1", items)) for i in range(600))
    assert set(seen) == set(itertools.permutations(items))  # all six orders occur
    assert min(seen.values()) > 60  # about 100 each
    seed = b"\x01" * 32
    assert darkbid.shuffle(seed, "7|1", items) == darkbid.shuffle(seed, "7|1", items)


def test_commit_view_mark_reveal_verify(site):  # noqa: F811
    template = json.loads(json.dumps(TEMPLATE))
    template["steps"] = [s for s in template["steps"] if s["kind"] != "pass_fail"]
    template.pop("deviation_alert")  # this test scores by position, far from any mean
    for i, c in enumerate(template["steps"][0]["criteria"], start=1):
        c["chapter"] = i
    members = people(site, "P01", "P02", "P03", "P04", "P06")
    ev.start(site, SESSION, template, BIDS, by="staff1")
    chapters = {b: [hashlib.sha256(f"{b} 第{c}章".encode()).hexdigest() for c in (1, 2)] for b in ("B1", "B2", "B3")}
    digest = darkbid.commit(site, SESSION, "technical", chapters)
    for person in members:
        ev.sign_in(site, SESSION, person)
        ev.confirm_read(site, SESSION, person)
    for person in members:
        ev.vote(site, SESSION, person, members[0])
    # Each expert sees labels and chapter files, never a bidder.
    views = {p: darkbid.view(site, SESSION, "technical", p) for p in members}
    assert all("B1" not in json.dumps(v) for v in views.values())
    assert {i["chapter_sha256"] for i in views[members[0]][0]["items"]} == {chapters[b][0] for b in chapters}
    # Everyone gives 30 to the label shown first and 20 to the others, plan and schedule alike.
    for p in members:
        for section in views[p]:
            for k, item in enumerate(section["items"]):
                darkbid.mark(site, SESSION, p, "technical", section["criterion"], item["label"], "28" if k == 0 else "20")
        ev.submit_step(site, SESSION, p, "technical")
    with pytest.raises(ev.EvaluationError, match="after the chair confirms"):
        darkbid.reveal(site, SESSION, "technical")
    ev.confirm_step(site, SESSION, members[0], "technical")
    revealed = darkbid.reveal(site, SESSION, "technical")
    committed = site.journal.records(kind="evaluation.dark_committed")[-1].payload
    assert committed["commitment"] == digest
    journaled = site.journal.records(kind="evaluation.dark_revealed")[-1].payload
    orders = darkbid.verify(committed, journaled)
    # Reassembled: each expert's 28 went to the bidder first in that expert's order of that chapter.
    marks = site.store.reader().execute("SELECT person_id, bidder, criterion, value FROM eval_marks WHERE value = '28.00'").fetchall()
    chapter_of = {"plan": "1", "schedule": "2"}
    assert {(p, c, b) for p, b, c, _ in marks} == {(p, c, orders[str(p)][chapter_of[c]][0]) for p in members for c in chapter_of}
    assert revealed["orders"] == orders
    # A changed order or seed no longer matches the commitment.
    forged = json.loads(json.dumps(journaled))
    first = str(members[0])
    forged["orders"][first]["1"] = list(reversed(forged["orders"][first]["1"]))
    with pytest.raises(ev.EvaluationError, match="orders"):
        darkbid.verify(committed, forged)
    forged = dict(journaled, seed="00" * 32)
    with pytest.raises(ev.EvaluationError, match="commit"):
        darkbid.verify(committed, forged)
    with pytest.raises(ev.EvaluationError, match="label"):
        darkbid.mark(site, SESSION, members[1], "technical", "plan", "第2章-01", "20")
