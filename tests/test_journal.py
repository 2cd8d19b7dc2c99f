"""The journal: gapless, chained, signed, appended with the state change, durable."""

import base64
import hashlib
import json

import pytest

from appliance.journal import GENESIS_PREV, RECORD_SIGNING_CONTEXT, JournalError
from appliance.personal import PersonalDataError
from appliance.signednote import open_checkpoint
from tests.helpers import SITE_ID, make_id_number


def test_records_are_gapless_chained_and_signed(site):
    for i in range(5):
        site.journal.record("staff.note", {"text": f"第{i}条", "author": "staff"})
    rows = site.store.reader().execute("SELECT seq, body, hash, sig FROM journal ORDER BY seq").fetchall()
    assert [r["seq"] for r in rows] == list(range(1, 7))
    prev = GENESIS_PREV
    for r in rows:
        body = json.loads(r["body"])
        assert body["prev"] == prev and body["seq"] == r["seq"] and body["site"] == SITE_ID
        assert hashlib.sha256(r["body"].encode()).hexdigest() == r["hash"]
        site.public_key.verify(base64.b64decode(r["sig"]), RECORD_SIGNING_CONTEXT + bytes.fromhex(r["hash"]))
        prev = r["hash"]


def test_record_commits_with_its_state_change_or_not_at_all(site):
    before = site.journal.count()
    with pytest.raises(RuntimeError):
        with site.store.transaction() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
            site.journal.append(conn, "staff.note", {"text": "state and record together"})
            raise RuntimeError("the state change failed after the record was written")
    assert site.journal.count() == before
    assert site.store.get_meta("k") is None
    with site.store.transaction() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        site.journal.append(conn, "staff.note", {"text": "state and record together"})
    assert site.journal.count() == before + 1 and site.store.get_meta("k") == "v"


def test_append_outside_a_transaction_is_refused(site):
    with pytest.raises(JournalError):
        site.journal.append(site.store.reader(), "staff.note", {"text": "x"})


def test_commits_are_durable_full_sync_in_wal_mode(site):
    conn = site.store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


@pytest.mark.parametrize("kind", ["note", "Staff.Note", "staff.", "staff note", ""])
def test_bad_kinds_are_refused(site, kind):
    with pytest.raises(JournalError):
        site.journal.record(kind, {"text": "x"})


def test_floats_and_personal_data_are_refused_and_nothing_is_written(site):
    before = site.journal.count()
    with pytest.raises(ValueError):
        site.journal.record("staff.note", {"fee": 1.5})
    with pytest.raises(PersonalDataError):
        site.journal.record("staff.note", {"text": f"专家身份证 {make_id_number()}"})
    assert site.journal.count() == before


def test_batched_append_is_one_transaction(site):
    with site.store.transaction() as conn:
        records = site.journal.append_many(conn, [("staff.note", {"n": i}) for i in range(100)])
    assert [r.seq for r in records] == list(range(2, 102))
    assert records[1].prev == records[0].hash


def test_checkpoint_signs_the_merkle_root_and_is_written_to_a_file(site, data_dir):
    for i in range(10):
        site.journal.record("staff.note", {"n": i})
    size, note = site.journal.checkpoint()
    assert size == 11
    cp = open_checkpoint(note, SITE_ID, site.public_key)
    from appliance import merkle

    assert cp.root == merkle.root(site.journal.leaf_hashes())
    assert (data_dir / "journal-checkpoint").read_text() == note
    assert site.journal.checkpoint() is None  # nothing new to cover
    site.journal.record("staff.note", {"n": 11})
    assert site.journal.checkpoint()[0] == 12


def test_two_processes_worth_of_writers_never_fork_the_chain(data_dir):
    """Two Store objects (as two processes would have) interleave appends on one file."""
    from appliance.site import open_site

    a, b = open_site(data_dir), open_site(data_dir)
    try:
        for i in range(20):
            (a if i % 2 else b).journal.record("staff.note", {"n": i})
        from appliance.verify import verify_journal

        result = verify_journal(a.store.reader(), SITE_ID, a.public_key)
        assert result.ok and result.records == 21
    finally:
        a.close()
        b.close()


def test_a_record_too_large_for_any_package_is_refused_and_nothing_is_written(site):
    before = site.journal.count()
    with pytest.raises(JournalError, match="more than a record may hold"):
        site.journal.record("note.added", {"text": "备注" * 300_000})  # ~1.8 MB
    assert site.journal.count() == before
    site.journal.record("note.added", {"text": "备注" * 1000})  # an ordinary one goes on
    assert site.journal.count() == before + 1
