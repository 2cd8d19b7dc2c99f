"""A committee seated at several venues (远程异地评标; docs/remote-evaluation.md).

The day plan names a remote session's venues and main venue (主会场) and, in the main venue's
plan, every member with the venue they sit at. The **main venue** holds the committee: the same
state machine as any evaluation (committee.py), its members all in ``eval_members``. A
**secondary venue** (副会场) checks in, admits and seats its own members as for any evaluation,
and its terminals act through the main venue:

1. a member's action at a secondary terminal is journaled there first
   (``evaluation.remote_action``, signed by the secondary venue) and held until delivered;
2. the relay (sync/relay.py, through the center) carries that journal record, with its own
   record signature, to the main venue, which verifies it with the secondary's key from the plan,
   journals it embedded (``evaluation.remote_received``), applies it with the same code a local
   terminal calls (appliance.evaluation.actions) and journals its answer
   (``evaluation.remote_answered``: applied or refused, and why) in the same transaction;
3. the main venue's committee records for the session — the answers included — go to every
   secondary venue, which journals each embedded (``evaluation.remote_record``): the answer to
   its own member's action is that action's signed acknowledgement;
4. the main venue also sends each secondary member's screen (the same data its own terminals
   render), signed, after every change (remote_screens.py).

Each venue records which venues of the committee are connected (``remote_links``; every change
journaled as ``evaluation.remote_link``). While any is away the committee is **paused**: the
committee's functions refuse with ``committee_paused`` (committee.py's `_need`), the main venue
defers relayed actions, and a secondary venue holds its members' actions ("not yet delivered").
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from appliance.clock import utc_timestamp
from appliance.evaluation import actions, venue_signoff
from appliance.evaluation.base import EvaluationError
from appliance.personal import redact_personal_data
from appliance.signing import attachment_message, record_message, screens_message
from appliance.site import Site

ACTIVE_AROUND = timedelta(hours=12)
MAX_ARGS = 64 << 10  # characters of JSON: a form of marks fits; embedded twice it stays far under a record's 1 MiB
RELAYED_KINDS = ("evaluation.", "session.")  # the main venue's records of a remote session its venues receive


class RemoteError(ValueError):
    """A relayed message that is not what it claims (bad signature, unknown venue or session)."""


@dataclass(frozen=True)
class Remote:
    session: str
    main: str
    venues: list[dict[str, str]]
    me: str

    @property
    def is_main(self) -> bool:
        return self.main == self.me

    @property
    def others(self) -> list[str]:
        return [v["site"] for v in self.venues if v["site"] != self.me]

    def name(self, venue: str) -> str:
        return next((v["name"] for v in self.venues if v["site"] == venue), venue)

    def key(self, venue: str) -> Ed25519PublicKey:
        pem = next((v["public_key"] for v in self.venues if v["site"] == venue), None)
        if pem is None:
            raise RemoteError(f"{venue} is not a venue of the remote session {self.session}")
        key = load_pem_public_key(pem.encode())
        assert isinstance(key, Ed25519PublicKey)
        return key


def remote_of(site: Site, conn: Any, session: str) -> Remote | None:
    row = conn.execute("SELECT main, venues FROM remote_sessions WHERE session = ?", (session,)).fetchone()
    return Remote(session, row[0], json.loads(row[1]), site.config.site.id) if row else None


def active(site: Site) -> list[Remote]:
    """The remote sessions this venue takes part in whose planned end is less than 12 hours ago
    (and that have begun, or begin within 12 hours): the relay runs for these, so the last
    records of a session (the report, its closing) still reach the other venues."""
    now = site.clock.now()
    conn = site.store.reader()
    rows = conn.execute("""SELECT r.session, r.main, r.venues FROM remote_sessions r JOIN sessions s ON s.id = r.session
                           WHERE s.end >= ? AND s.start <= ? ORDER BY s.start""",
                        (utc_timestamp(now - ACTIVE_AROUND), utc_timestamp(now + ACTIVE_AROUND))).fetchall()
    return [Remote(r[0], r[1], json.loads(r[2]), site.config.site.id) for r in rows]


def is_secondary(site: Site, conn: Any, session: str) -> bool:
    remote = remote_of(site, conn, session)
    return remote is not None and not remote.is_main


# -- links ---------------------------------------------------------------------------------------

def away(conn: Any, session: str) -> list[str]:
    """The venues of a remote session this venue sees as disconnected (empty: not paused)."""
    return [r[0] for r in conn.execute("SELECT venue FROM remote_links WHERE session = ? AND connected = 0 ORDER BY venue",
                                       (session,))]


def link_state(site: Site, conn: Any, session: str) -> dict[str, Any] | None:
    """What a screen says about the committee's link: None for a session held at one venue."""
    remote = remote_of(site, conn, session)
    if remote is None:
        return None
    gone = away(conn, session)
    since = conn.execute("SELECT MIN(since) FROM remote_links WHERE session = ? AND connected = 0", (session,)).fetchone()[0]
    return {"main": remote.name(remote.main), "is_main": remote.is_main, "paused": bool(gone),
            "away": [remote.name(v) for v in gone], "since": since,
            "venues": [{"site": v["site"], "name": v["name"], "main": v["site"] == remote.main,
                        "connected": v["site"] == remote.me or v["site"] not in gone} for v in remote.venues]}


def set_links(site: Site, session: str, connected: dict[str, bool]) -> list[str]:
    """Record which of the session's other venues are connected, as this venue sees them; each
    change is journaled. Returns the venues whose state changed."""
    changed = []
    with site.store.transaction() as conn:
        remote = remote_of(site, conn, session)
        names = {v["site"]: v["name"] for v in remote.venues} if remote else {}
        for venue, up in sorted(connected.items()):
            row = conn.execute("SELECT connected FROM remote_links WHERE session = ? AND venue = ?", (session, venue)).fetchone()
            if row is not None and bool(row[0]) == up:
                continue
            if row is None and up:  # never seen away: nothing to record
                conn.execute("INSERT INTO remote_links (session, venue, connected, since) VALUES (?, ?, 1, ?)",
                             (session, venue, utc_timestamp(site.clock.now())))
                continue
            conn.execute("""INSERT INTO remote_links (session, venue, connected, since) VALUES (?, ?, ?, ?)
                            ON CONFLICT (session, venue) DO UPDATE SET connected = excluded.connected, since = excluded.since""",
                         (session, venue, int(up), utc_timestamp(site.clock.now())))
            site.journal.append(conn, "evaluation.remote_link", {"session": session, "venue": venue,
                                                                 "venue_name": names.get(venue, venue), "connected": up})
            changed.append(venue)
    return changed


# -- a secondary venue: its members' actions -----------------------------------------------------

def _args(args: dict[str, Any]) -> dict[str, Any]:
    """What a member typed, with any ID or bank card number masked (it goes into journals); a
    report signature is named by its SHA-256 (the image travels as an attachment)."""
    out = {k: redact_personal_data(v) if isinstance(v, str) else v for k, v in args.items() if k != "signature_png"}
    if isinstance(out.get("fields"), dict):
        out["fields"] = {str(k): redact_personal_data(v) if isinstance(v, str) else "" for k, v in out["fields"].items()}
    if len(json.dumps(out, ensure_ascii=False)) > MAX_ARGS:
        raise EvaluationError("bad_value", "the action is too large to send")
    return out


def forward(site: Site, session: str, person_id: int, action: str, args: dict[str, Any], *, terminal: str,
            conn: Any = None) -> int:
    """A member's action at this (secondary) venue: journaled here, held until the relay takes it
    to the main venue. Returns the record's seq (the action's number)."""
    if action not in actions.ACTIONS:
        raise EvaluationError("unknown_action", f"no committee action {action!r}")
    with site.store.within(conn) as conn:
        remote = remote_of(site, conn, session)
        if remote is None or remote.is_main:
            raise EvaluationError("not_remote", f"{session} is not held at another venue")
        ref = conn.execute("SELECT ref FROM person_refs WHERE person_id = ?", (person_id,)).fetchone()
        if ref is None:
            raise EvaluationError("not_member", "not on this venue's roster")
        journaled = _args(args)
        png = None
        if "signature_png" in args:  # kept out of the journal: sealed here, sent beside the record
            png = actions.signature_bytes(args.get("signature_png"))
            journaled["signature_sha256"] = hashlib.sha256(png).hexdigest()
        record = site.journal.append(conn, "evaluation.remote_action", {
            "session": session, "main": remote.main, "person_id": person_id, "person_ref": ref[0], "action": action,
            "args": journaled, "terminal": terminal})
        conn.execute("INSERT INTO remote_actions (seq, session, person_id, action) VALUES (?, ?, ?, ?)",
                     (record.seq, session, person_id, action))
        if png is not None:
            conn.execute("INSERT INTO remote_attachments (origin, origin_seq, sha256, sealed) VALUES (?, ?, ?, ?)",
                         (remote.me, record.seq, journaled["signature_sha256"], site.personal.seal("person.signature", png)))
        return record.seq


def sign_for_venue(site: Site, session: str, *, supervisor: str, remark: str = "") -> str:
    """A supervisor of this venue signs for its part of a remote evaluation's report: recorded
    here at the main venue (``signed``), relayed from a secondary venue (``held``)."""
    remote = remote_of(site, site.store.reader(), session)
    if remote is None:
        raise EvaluationError("not_remote", f"{session} is not a remote evaluation")
    if not remote.is_main:
        forward_venue_sign(site, session, supervisor=supervisor, remark=remark)
        return "held"
    with site.store.transaction() as conn:
        venue_signoff.sign(site, conn, session, venue=remote.me, venue_name=remote.name(remote.me), main=remote.main,
                           supervisor=supervisor, remark=remark)
    return "signed"


def forward_venue_sign(site: Site, session: str, *, supervisor: str, remark: str = "") -> int:
    """A supervisor of this (secondary) venue signs for its part of the report
    (venue_signoff.py): journaled here as an action without a member, held until the main venue
    answers it. Returns the record's seq."""
    supervisor, remark = venue_signoff.clean(supervisor, remark)
    with site.store.transaction() as conn:
        remote = remote_of(site, conn, session)
        if remote is None or remote.is_main:
            raise EvaluationError("not_remote", f"{session} is not held at another venue")
        state = shown_state(conn, session)
        if state != "finalized":  # as the main venue's screens last said: it would refuse
            raise EvaluationError("wrong_state", f"the evaluation is {state or 'not started'}, not finalized")
        record = site.journal.append(conn, "evaluation.remote_action", {
            "session": session, "main": remote.main, "person_id": None, "person_ref": None, "action": venue_signoff.ACTION,
            "args": {"supervisor": supervisor, "remark": remark}, "terminal": None})
        venue_signoff.held_at_secondary(conn, session, remote.me, supervisor, remark, record.seq, utc_timestamp(site.clock.now()))
        return record.seq


def attachment(site: Site, seq: int) -> dict[str, Any] | None:
    """The report signature a member's action ``seq`` (journaled here) names, as the message
    that carries it: {"session", "from", "origin_seq", "sha256", "png" (base64)}."""
    conn = site.store.reader()
    row = conn.execute("SELECT a.sha256, a.sealed, r.session FROM remote_attachments a JOIN remote_actions r ON r.seq = a.origin_seq "
                       "WHERE a.origin = ? AND a.origin_seq = ?", (site.config.site.id, seq)).fetchone()
    if row is None:
        return None
    png = site.personal.open("person.signature", row[1])
    return {"session": row[2], "from": site.config.site.id, "origin_seq": seq, "sha256": row[0],
            "png": base64.b64encode(png).decode()}


def receive_attachment(site: Site, session: str, origin: str, text: str, sig: str) -> None:
    """At the main venue: a secondary venue's attachment (a member's report signature), verified
    with its key and kept sealed until the action naming it is applied."""
    conn = site.store.reader()
    remote = remote_of(site, conn, session)
    if remote is None or not remote.is_main or origin not in remote.others:
        raise RemoteError(f"an attachment for {session} goes to its main venue from another venue only")
    try:
        remote.key(origin).verify(base64.b64decode(sig, validate=True), attachment_message(hashlib.sha256(text.encode()).digest()))
        data = json.loads(text)
        png = base64.b64decode(data["png"], validate=True)
    except (InvalidSignature, ValueError, KeyError, TypeError) as exc:
        raise RemoteError(f"an attachment relayed from {origin} does not verify with its key: {exc}") from exc
    if data.get("session") != session or data.get("from") != origin or hashlib.sha256(png).hexdigest() != data.get("sha256") \
            or not isinstance(data.get("origin_seq"), int):
        raise RemoteError("an attachment: session, from, origin_seq and the SHA-256 of its png")
    with site.store.transaction() as conn:
        conn.execute("INSERT OR IGNORE INTO remote_attachments (origin, origin_seq, sha256, sealed) VALUES (?, ?, ?, ?)",
                     (origin, data["origin_seq"], data["sha256"], site.personal.seal("person.signature", png)))


def pending(conn: Any, session: str, person_id: int) -> list[dict[str, Any]]:
    """A member's actions not yet answered by the main venue (``held``: not yet delivered to the
    center; ``sent``: delivered, awaiting the answer), and the last refusal."""
    rows = conn.execute("SELECT seq, action, state, code FROM remote_actions WHERE session = ? AND person_id = ? "
                        "AND (state IN ('held', 'sent') OR seq = (SELECT MAX(seq) FROM remote_actions WHERE session = ? "
                        "AND person_id = ? AND state = 'refused' AND answer_seq IS NOT NULL)) ORDER BY seq",
                        (session, person_id, session, person_id)).fetchall()
    return [{"seq": r[0], "action": r[1], "state": r[2], "code": r[3]} for r in rows]


def marks_on_the_way(conn: Any, session: str, person_id: int, step: str) -> dict[str, dict[str, str]]:
    """The marks of a member's ``marks`` actions for ``step`` not yet answered by the main venue
    (``"bidder|criterion"`` → value and explanation, as the screen holds marks): the member's
    form shows what they typed and sent, not the older marks the main venue's screen carries."""
    out: dict[str, dict[str, str]] = {}
    for (body,) in conn.execute("SELECT j.body FROM remote_actions a JOIN journal j ON j.seq = a.seq WHERE a.session = ? "
                                "AND a.person_id = ? AND a.action = 'marks' AND a.state IN ('held', 'sent') ORDER BY a.seq",
                                (session, person_id)):
        args = json.loads(body)["payload"].get("args") or {}
        if args.get("step") != step or not isinstance(args.get("fields"), dict):
            continue
        for key, value in args["fields"].items():
            kind, _, rest = str(key).partition("|")
            if kind in ("m", "x") and rest.count("|") == 1:
                mark = out.setdefault(rest, {"value": "", "explanation": ""})
                mark["value" if kind == "m" else "explanation"] = str(value)
    return out


def sent(site: Site, seqs: list[int]) -> None:
    """The center holds these actions now (no longer only here)."""
    if seqs:
        with site.store.transaction() as conn:
            conn.executemany("UPDATE remote_actions SET state = 'sent' WHERE seq = ? AND state = 'held'", [(s,) for s in seqs])
            conn.executemany("UPDATE venue_signoffs SET state = 'sent' WHERE seq = ? AND state = 'held'", [(s,) for s in seqs])


# -- receiving a relayed record ------------------------------------------------------------------

def verify_record(remote: Remote, origin: str, body: str, sig: str) -> dict[str, Any]:
    """A journal record of ``origin`` as relayed: its body's SHA-256 signed by the origin's key
    (the record signature, docs/journal.md). Returns the parsed body."""
    try:
        remote.key(origin).verify(base64.b64decode(sig, validate=True), record_message(hashlib.sha256(body.encode()).digest()))
        record = json.loads(body)
    except (InvalidSignature, ValueError) as exc:
        raise RemoteError(f"a record relayed from {origin} does not verify with its key: {exc}") from exc
    if not isinstance(record, dict) or record.get("site") != origin or not isinstance(record.get("payload"), dict):
        raise RemoteError(f"a record relayed from {origin} is not one of its journal records")
    if record["payload"].get("session") != remote.session:
        raise RemoteError(f"a record relayed from {origin} is not of session {remote.session}")
    return record


def receive_record(site: Site, session: str, origin: str, body: str, sig: str) -> str:
    """Take one relayed journal record: ``applied``, ``duplicate`` (had it already), or
    ``deferred`` (the committee is paused: it is taken again when the link is whole)."""
    conn = site.store.reader()
    remote = remote_of(site, conn, session)
    if remote is None or origin not in remote.others:
        raise RemoteError(f"{origin} is not another venue of a remote session {session} here")
    record = verify_record(remote, origin, body, sig)
    if conn.execute("SELECT 1 FROM remote_received WHERE origin = ? AND origin_seq = ?", (origin, record["seq"])).fetchone():
        return "duplicate"
    if remote.is_main:
        if record["kind"] != "evaluation.remote_action":
            raise RemoteError(f"the main venue takes only members' actions from {origin}, not {record['kind']}")
        if away(conn, session):
            return "deferred"
        _apply_action(site, remote, origin, record, body, sig)
        return "applied"
    if origin != remote.main:
        raise RemoteError(f"a secondary venue takes the committee's records from the main venue only, not {origin}")
    with site.store.transaction() as conn:
        if conn.execute("SELECT 1 FROM remote_received WHERE origin = ? AND origin_seq = ?", (origin, record["seq"])).fetchone():
            return "duplicate"  # taken meanwhile (another poller)
        local = site.journal.append(conn, "evaluation.remote_record", {
            "session": session, "origin": origin, "origin_name": remote.name(origin), "origin_seq": record["seq"], "kind": record["kind"],
            "record": {"body": body, "sig": sig}})
        conn.execute("INSERT INTO remote_received (origin, origin_seq, session, seq) VALUES (?, ?, ?, ?)",
                     (origin, record["seq"], session, local.seq))
        answer = record["payload"]
        if record["kind"] == "evaluation.remote_answered" and answer.get("origin") == remote.me:
            conn.execute("UPDATE remote_actions SET state = ?, code = ?, answer_seq = ? WHERE seq = ?",
                         (answer.get("outcome"), answer.get("code"), local.seq, answer.get("origin_seq")))
            conn.execute("UPDATE venue_signoffs SET state = ?, code = ? WHERE seq = ? AND venue = ?",
                         ("signed" if answer.get("outcome") == "applied" else "refused", answer.get("code"), answer.get("origin_seq"),
                          remote.me))
        if record["kind"] == "evaluation.venue_signed" and answer.get("venue") != remote.me:
            venue_signoff.learned(conn, answer, str(record.get("ts", "")))
    return "applied"


SLOW_ACTIONS = ("issue",)  # the report's PDF is rendered by chromium: never inside a write transaction


def _apply_action(site: Site, remote: Remote, origin: str, record: dict[str, Any], body: str, sig: str) -> None:
    """At the main venue: journal the action with the origin's record embedded, apply it with the
    terminal's own code (in savepoints: a refused action leaves nothing behind) and journal the
    answer, all in one transaction — but for the report's issue, whose rendering runs between
    the two records (a crash there leaves the action received and unanswered: it comes again and
    is answered then)."""
    p = record["payload"]
    received = {"session": remote.session, "origin": origin, "origin_name": remote.name(origin), "origin_seq": record["seq"],
                "record": {"body": body, "sig": sig}}
    answer: dict[str, Any] = {"session": remote.session, "origin": origin, "origin_name": remote.name(origin),
                              "origin_seq": record["seq"], "action": p.get("action")}
    if p.get("action") in SLOW_ACTIONS:
        with site.store.transaction() as conn:
            site.journal.append(conn, "evaluation.remote_received", received)
        _perform(site, site.store.reader(), remote, origin, record, answer)
        with site.store.transaction() as conn:
            _answer(site, conn, remote, origin, record, answer)
        return
    with site.store.transaction() as conn:
        if conn.execute("SELECT 1 FROM remote_received WHERE origin = ? AND origin_seq = ?", (origin, record["seq"])).fetchone():
            return  # taken meanwhile (another poller)
        site.journal.append(conn, "evaluation.remote_received", received)
        _perform(site, conn, remote, origin, record, answer)
        _answer(site, conn, remote, origin, record, answer)


def _answer(site: Site, conn: Any, remote: Remote, origin: str, record: dict[str, Any], answer: dict[str, Any]) -> None:
    answered = site.journal.append(conn, "evaluation.remote_answered", answer)
    conn.execute("INSERT OR IGNORE INTO remote_received (origin, origin_seq, session, seq) VALUES (?, ?, ?, ?)",
                 (origin, record["seq"], remote.session, answered.seq))


def _perform(site: Site, conn: Any, remote: Remote, origin: str, record: dict[str, Any], answer: dict[str, Any]) -> None:
    """Apply the relayed action for the member it names (``conn``: the transaction it joins, or a
    reader for a slow action); ``answer`` says how it went."""
    p = record["payload"]
    try:
        if p.get("main") != remote.me:  # an action meant for another main venue (a replay) is not ours
            raise EvaluationError("not_remote", f"the action was sent to {p.get('main')}, not to this venue")
        if p.get("action") == venue_signoff.ACTION:  # a supervisor of that venue signs for its part
            args = p.get("args") if isinstance(p.get("args"), dict) else {}
            with site.store.transaction() as inner:
                venue_signoff.sign(site, inner, remote.session, venue=origin, venue_name=remote.name(origin), main=remote.main,
                                   supervisor=args.get("supervisor"), remark=args.get("remark", ""), origin_seq=record["seq"])
            answer.update(outcome="applied", code=None)
            return
        person = conn.execute("SELECT r.person_id FROM person_refs f JOIN roster r ON r.person_id = f.person_id "
                              "WHERE f.ref = ? AND r.session = ? AND r.venue = ?", (p.get("person_ref"), remote.session,
                                                                                   origin)).fetchone()
        if person is None:
            raise EvaluationError("other_venue", f"{p.get('person_ref')} is not seated at {remote.name(origin)}")
        args = dict(p.get("args")) if isinstance(p.get("args"), dict) else {}
        if "signature_sha256" in args:  # the signature came beside the record
            held = conn.execute("SELECT sha256, sealed FROM remote_attachments WHERE origin = ? AND origin_seq = ?",
                                (origin, record["seq"])).fetchone()
            if held is None or held[0] != args["signature_sha256"]:
                raise EvaluationError("signature_needed", "the signature named by the action did not arrive")
            args["signature_png"] = base64.b64encode(site.personal.open("person.signature", held[1])).decode()
        action = str(p.get("action"))
        if action in SLOW_ACTIONS:
            result = actions.perform(site, remote.session, person[0], action, args)
        elif action == "marks" and args.get("submit") is True:
            # Saved first, on their own: a refused submission keeps what the member typed, as at
            # a terminal of this venue.
            with site.store.transaction():
                result = actions.perform(site, remote.session, person[0], action, {**args, "submit": False})
            if not result["problems"]:
                with site.store.transaction():
                    result = actions.perform(site, remote.session, person[0], action, args)
        else:
            with site.store.transaction():
                result = actions.perform(site, remote.session, person[0], action, args)
        answer.update(outcome="applied", code=None)
        if isinstance(result, dict) and result.get("problems"):
            answer["problems"] = [{k: q[k] for k in ("field", "code")} for q in result["problems"]]
    except EvaluationError as exc:
        answer.update(outcome="refused", code=exc.code, message=redact_personal_data(str(exc))[:300])


def refused(site: Site, message: dict[str, Any], reason: str) -> None:
    """A relayed message that is not what it claims (a bad signature, an unknown venue): never
    applied, and journaled (``evaluation.remote_refused``) with its SHA-256, not its content."""
    body = str(message.get("body", ""))
    with site.store.transaction() as conn:
        site.journal.append(conn, "evaluation.remote_refused", {
            "session": str(message.get("session", ""))[:64], "from": str(message.get("from", ""))[:64],
            "kind": str(message.get("kind", ""))[:16], "relay_seq": message.get("seq") if isinstance(message.get("seq"), int) else None,
            "sha256": hashlib.sha256(body.encode()).hexdigest(), "reason": redact_personal_data(reason)[:300]})


def relayed_records(site: Site, after: int, limit: int = 200) -> tuple[list[tuple[Remote, dict[str, Any]]], int]:
    """This venue's journal records after seq ``after`` that go to the other venues of a remote
    session: from a secondary venue its members' actions (to the main venue), from the main
    venue its committee records of the session (to every secondary venue). Returns them with
    the seq scanned up to."""
    conn = site.store.reader()
    rows = conn.execute("SELECT seq, kind, body, sig FROM journal WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()
    remotes: dict[str, Remote | None] = {}
    out = []
    for seq, kind, body, sig in rows:
        if not kind.startswith(RELAYED_KINDS) or kind == "evaluation.remote_record":
            continue
        session = json.loads(body).get("payload", {}).get("session")
        if not isinstance(session, str):
            continue
        if session not in remotes:
            remotes[session] = remote_of(site, conn, session)
        remote = remotes[session]
        if remote is None or (not remote.is_main and kind != "evaluation.remote_action"):
            continue
        out.append((remote, {"seq": seq, "kind": kind, "body": body, "sig": sig}))
    return out, (rows[-1][0] if rows else after)


# -- screens -------------------------------------------------------------------------------------

def receive_screens(site: Site, session: str, origin: str, text: str, sig: str) -> bool:
    """At a secondary venue: the main venue's screens for this venue's members (kept when newer
    than what is held). Returns whether they were newer."""
    conn = site.store.reader()
    remote = remote_of(site, conn, session)
    if remote is None or remote.is_main or origin != remote.main:
        raise RemoteError(f"screens for {session} come from its main venue only, not {origin}")
    try:
        remote.key(origin).verify(base64.b64decode(sig, validate=True), screens_message(hashlib.sha256(text.encode()).digest()))
        data = json.loads(text)
    except (InvalidSignature, ValueError) as exc:
        raise RemoteError(f"screens relayed from {origin} do not verify with its key: {exc}") from exc
    if data.get("session") != session or not isinstance(data.get("version"), int) or not isinstance(data.get("screens"), dict):
        raise RemoteError("screens: session, version and screens expected")
    with site.store.transaction() as conn:
        held = conn.execute("SELECT MAX(version) FROM remote_screens WHERE session = ?", (session,)).fetchone()[0]
        if held is not None and held >= data["version"]:
            return False
        for ref, screen in data["screens"].items():
            conn.execute("""INSERT INTO remote_screens (session, person_ref, version, screen) VALUES (?, ?, ?, ?)
                            ON CONFLICT (session, person_ref) DO UPDATE SET version = excluded.version, screen = excluded.screen""",
                         (session, ref, data["version"], json.dumps(screen, ensure_ascii=False)))
        conn.execute("UPDATE remote_screens SET version = ? WHERE session = ?", (data["version"], session))
    return True


def shown_state(conn: Any, session: str) -> str | None:
    """At a secondary venue: the evaluation's state as the main venue's screens last said it
    (None before the first screens arrive)."""
    shown = conn.execute("SELECT screen FROM remote_screens WHERE session = ? LIMIT 1", (session,)).fetchone()
    return json.loads(shown[0]).get("state") if shown else None


def screen(site: Site, session: str, person_id: int) -> dict[str, Any] | None:
    """At a secondary venue: what the member's terminal shows, as the main venue last sent it."""
    row = site.store.reader().execute("SELECT s.screen FROM remote_screens s JOIN person_refs f ON f.ref = s.person_ref "
                                      "WHERE s.session = ? AND f.person_id = ?", (session, person_id)).fetchone()
    return json.loads(row[0]) if row else None
