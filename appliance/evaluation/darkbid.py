"""Dark-bid review (暗标评审, 004 §九): technical bids in a uniform format, split into chapters,
shown to each expert chapter by chapter in an order of its own, under labels that say nothing of
the bidder; the permutations are committed to (their hash journaled) before anyone sees a page,
and revealed — bidders reassembled — after the chair confirms the scores, where anyone can check
them against the commitment.

* A random 32-byte **seed** (kept sealed until the reveal) and the bidders' **chapter hashes**
  (SHA-256 of each chapter file) determine everything: for expert *e* and chapter *c*, the order
  of the bidders is a Fisher–Yates shuffle driven by HMAC-SHA256(seed, "site-appliance/dark-bid/v1
  |e|c|counter") (rejection sampling, so no order is favoured), and the *k*-th bidder shown is
  labelled ``第c章-0k``.
* **Commitment** = SHA-256 of the canonical JSON {"format", "session", "step", "seed" (hex),
  "chapters": {bidder: [sha256, …]}}, journaled (``evaluation.dark_committed``) before any view.
* **Reveal** journals the seed and the chapter hashes (``evaluation.dark_revealed``); `verify`
  recomputes the commitment and every expert's orders from them alone.

The experts mark a label; the appliance resolves it to the bidder (committee.mark) and journals
only what the committee's marks journal. The mapping is not shown anywhere before the reveal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from appliance.canonical import canonical_bytes
from appliance.evaluation import committee
from appliance.evaluation.committee import EvaluationError
from appliance.site import Site

FORMAT = "site-appliance/dark-bid/v1"


def _draw(seed: bytes, context: str, counter: int) -> int:
    return int.from_bytes(hmac.new(seed, f"{FORMAT}|{context}|{counter}".encode(), hashlib.sha256).digest(), "big")


def shuffle(seed: bytes, context: str, items: list[str]) -> list[str]:
    """Fisher–Yates, each index drawn by rejection sampling from HMAC-SHA256 output (unbiased)."""
    out = list(items)
    counter = 0
    for i in range(len(out) - 1, 0, -1):
        bound = i + 1
        limit = (1 << 256) - ((1 << 256) % bound)
        while True:
            value = _draw(seed, context, counter)
            counter += 1
            if value < limit:
                break
        j = value % bound
        out[i], out[j] = out[j], out[i]
    return out


def orders(seed: bytes, experts: list[int], chapters: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    """expert → chapter number → bidders in the order that expert sees them."""
    bidders = sorted(chapters)
    count = len(next(iter(chapters.values()))) if chapters else 0
    return {str(e): {str(c): shuffle(seed, f"{e}|{c}", bidders) for c in range(1, count + 1)} for e in experts}


def commitment(session: str, step: str, seed: bytes, chapters: dict[str, list[str]]) -> str:
    return hashlib.sha256(canonical_bytes({"format": FORMAT, "session": session, "step": step, "seed": seed.hex(),
                                           "chapters": chapters})).hexdigest()


def verify(committed: dict[str, Any], revealed: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """From the two journal payloads alone: the commitment matches, and the orders the reveal
    states are the ones the seed gives. Returns the orders; raises EvaluationError otherwise."""
    seed = bytes.fromhex(revealed["seed"])
    if commitment(committed["session"], committed["step"], seed, revealed["chapters"]) != committed["commitment"]:
        raise EvaluationError("commitment_mismatch", "the revealed seed and chapters do not give the committed hash")
    recomputed = orders(seed, committed["experts"], revealed["chapters"])
    if recomputed != revealed["orders"]:
        raise EvaluationError("orders_mismatch", "the revealed orders are not the ones the seed gives")
    return recomputed


def commit(site: Site, session: str, step: str, chapters: dict[str, list[str]]) -> str:
    """Before review: the bidders' chapter hashes in, a seed drawn and sealed, the commitment
    journaled. ``chapters``: bidder → [SHA-256 of chapter 1, chapter 2, …] (uniform format: the
    same number of chapters for all)."""
    counts = {len(v) for v in chapters.values()}
    if len(counts) != 1 or 0 in counts:
        raise EvaluationError("not_uniform", "every technical bid must have the same number of chapters")
    seed = secrets.token_bytes(32)
    with site.store.transaction() as conn:
        committee._need(conn, session, "signing_in", "electing", "evaluating")
        template = committee._template(conn, session)
        if committee._step(template, step)["kind"] != "scoring":
            raise EvaluationError("not_scoring", "dark review is for a scoring step")
        valid = {r[0] for r in conn.execute("SELECT bidder FROM eval_bidders WHERE session = ? AND valid = 1", (session,))}
        if set(chapters) != valid:
            raise EvaluationError("bad_bids", f"chapters are needed for exactly the valid bidders {sorted(valid)}")
        if conn.execute("SELECT 1 FROM dark_reviews WHERE session = ? AND step = ?", (session, step)).fetchone():
            raise EvaluationError("exists", "this step's dark review is committed already")
        digest = commitment(session, step, seed, chapters)
        conn.execute("INSERT INTO dark_reviews (session, step, seed_sealed, chapters, commitment) VALUES (?, ?, ?, ?, ?)",
                     (session, step, site.personal.seal("evaluation.dark_seed", seed), json.dumps(chapters), digest))
        site.journal.append(conn, "evaluation.dark_committed", {"session": session, "step": step, "commitment": digest,
                                                                "experts": committee._members(conn, session),
                                                                "chapters": len(next(iter(chapters.values())))})
        return digest


def _review(site: Site, conn: Any, session: str, step: str) -> tuple[bytes, dict[str, list[str]], str | None]:
    row = conn.execute("SELECT seed_sealed, chapters, revealed FROM dark_reviews WHERE session = ? AND step = ?",
                       (session, step)).fetchone()
    if row is None:
        raise EvaluationError("no_dark_review", "no dark review committed for this step")
    return site.personal.open("evaluation.dark_seed", row[0]), json.loads(row[1]), row[2]


def view(site: Site, session: str, step: str, expert: int) -> list[dict[str, Any]]:
    """What one expert sees: per criterion (its ``chapter``), labels in that expert's order
    with the chapter's hash (the file the terminal shows) — no bidder."""
    conn = site.store.reader()
    committee._member(conn, session, expert)
    seed, chapters, _ = _review(site, conn, session, step)
    template = committee._template(conn, session)
    out = []
    for criterion in committee._step(template, step)["criteria"]:
        c = int(criterion.get("chapter", 1))
        order = shuffle(seed, f"{expert}|{c}", sorted(chapters))
        out.append({"criterion": criterion["id"], "chapter": c,
                    "items": [{"label": f"第{c}章-{k:02d}", "chapter_sha256": chapters[b][c - 1]} for k, b in enumerate(order, 1)]})
    return out


def mark(site: Site, session: str, expert: int, step: str, criterion: str, label: str, value: Any, explanation: str = "") -> None:
    """An expert's score for a label; resolved to the bidder here, never shown."""
    conn = site.store.reader()
    seed, chapters, _ = _review(site, conn, session, step)
    crit = next((c for c in committee._step(committee._template(conn, session), step)["criteria"] if c["id"] == criterion), None)
    if crit is None:
        raise EvaluationError("no_criterion", f"no criterion {criterion!r}")
    c = int(crit.get("chapter", 1))
    order = shuffle(seed, f"{expert}|{c}", sorted(chapters))
    try:
        k = int(label.rsplit("-", 1)[1])
        if not label.startswith(f"第{c}章-") or not 1 <= k <= len(order):
            raise ValueError
    except (IndexError, ValueError) as exc:
        raise EvaluationError("bad_label", f"{label!r} is not a label of chapter {c}") from exc
    committee.mark(site, session, expert, step, order[k - 1], criterion, value, explanation)


def reveal(site: Site, session: str, step: str, conn: Any = None) -> dict[str, Any]:
    """After the chair confirmed the step: the seed, the chapters and every expert's orders are
    journaled and checked against the commitment; the bidders are reassembled (in the caller's
    transaction when given one: the confirmation's)."""
    with site.store.within(conn) as conn:
        state = conn.execute("SELECT state FROM eval_steps WHERE session = ? AND step = ?", (session, step)).fetchone()
        if state is None or state[0] != "confirmed":
            raise EvaluationError("not_confirmed", "the dark review is revealed after the chair confirms the step")
        seed, chapters, revealed = _review(site, conn, session, step)
        if revealed:
            raise EvaluationError("revealed", "revealed already")
        committed = conn.execute("SELECT commitment FROM dark_reviews WHERE session = ? AND step = ?", (session, step)).fetchone()[0]
        payload = {"session": session, "step": step, "seed": seed.hex(), "chapters": chapters,
                   "orders": orders(seed, committee._members(conn, session), chapters)}
        verify({"session": session, "step": step, "commitment": committed, "experts": committee._members(conn, session)}, payload)
        conn.execute("UPDATE dark_reviews SET revealed = ? WHERE session = ? AND step = ?", (committee._now(site), session, step))
        site.journal.append(conn, "evaluation.dark_revealed", payload)
        return payload
