"""`appliance journal verify`: intact → exit 0 and one JSON line; every kind of tampering with
the SQLite file → exit 1, the first bad seq and what is wrong."""

import base64
import sqlite3

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.journal import RECORD_SIGNING_CONTEXT
from appliance.signednote import Checkpoint, sign_checkpoint
from tests.helpers import SITE_ID, json_line


@pytest.fixture
def filled(site, data_dir):
    for i in range(40):
        site.journal.record("staff.note", {"text": f"巡场记录 {i}", "author": "staff"})
        if i == 19:
            assert site.journal.checkpoint()[0] == 21  # the init record plus 20 notes
    site.journal.checkpoint()
    site.close()
    return data_dir


def tamper(data_dir, *statements):
    conn = sqlite3.connect(data_dir / "appliance.db")
    with conn:
        for sql in statements:
            conn.execute(sql)
    conn.close()


def verify(cli, data_dir):
    code, out, _ = cli("journal", "verify", "--data", str(data_dir))
    return code, json_line(out)


def test_intact_journal_verifies(cli, filled):
    code, result = verify(cli, filled)
    assert code == 0
    assert result["ok"] is True and result["records"] == 41 and len(result["head"]) == 64
    assert set(result) >= {"ok", "records", "head"}


def test_changed_payload_byte(cli, filled):
    conn = sqlite3.connect(filled / "appliance.db")
    body = conn.execute("SELECT body FROM journal WHERE seq = 17").fetchone()[0]
    conn.close()
    tamper(filled, f"UPDATE journal SET body = '{body.replace('巡场记录 15', '巡场记录 16')}' WHERE seq = 17")
    code, result = verify(cli, filled)
    assert code == 1 and result["ok"] is False and result["seq"] == 17
    assert "hash" in result["error"]


def test_changed_payload_with_recomputed_hash_breaks_signature(cli, filled):
    import hashlib

    conn = sqlite3.connect(filled / "appliance.db")
    body = conn.execute("SELECT body FROM journal WHERE seq = 30").fetchone()[0].replace("记录 28", "记录 99")
    new_hash = hashlib.sha256(body.encode()).hexdigest()
    conn.close()
    tamper(filled, f"UPDATE journal SET body = '{body}', hash = '{new_hash}' WHERE seq = 30")
    code, result = verify(cli, filled)
    assert code == 1 and result["seq"] == 30 and "signature" in result["error"]


def test_deleted_row(cli, filled):
    tamper(filled, "DELETE FROM journal WHERE seq = 12")
    code, result = verify(cli, filled)
    assert code == 1 and result["seq"] == 12 and "missing" in result["error"]


def test_swapped_rows(cli, filled):
    tamper(
        filled,
        "UPDATE journal SET seq = -1 WHERE seq = 8",
        "UPDATE journal SET seq = 8 WHERE seq = 9",
        "UPDATE journal SET seq = 9 WHERE seq = -1",
    )
    code, result = verify(cli, filled)
    assert code == 1 and result["seq"] == 8


def test_replaced_signature(cli, filled):
    forger = Ed25519PrivateKey.generate()
    conn = sqlite3.connect(filled / "appliance.db")
    digest = bytes.fromhex(conn.execute("SELECT hash FROM journal WHERE seq = 25").fetchone()[0])
    conn.close()
    forged = base64.b64encode(forger.sign(RECORD_SIGNING_CONTEXT + digest)).decode()
    tamper(filled, f"UPDATE journal SET sig = '{forged}' WHERE seq = 25")
    code, result = verify(cli, filled)
    assert code == 1 and result["seq"] == 25 and "signature" in result["error"]


def test_truncated_tail(cli, filled):
    tamper(filled, "DELETE FROM journal WHERE seq > 35")
    code, result = verify(cli, filled)
    assert code == 1 and result["seq"] == 36 and "truncated" in result["error"]


def test_truncated_tail_and_checkpoints_is_caught_by_the_checkpoint_file(cli, filled):
    tamper(filled, "DELETE FROM journal WHERE seq > 35", "DELETE FROM checkpoints WHERE size > 35")
    code, result = verify(cli, filled)
    assert code == 1 and result["ok"] is False and result["seq"] <= 36


def test_forged_checkpoint_root(cli, filled):
    forger = Ed25519PrivateKey.generate()
    note = sign_checkpoint(Checkpoint(SITE_ID, 21, bytes(32)), SITE_ID, forger)
    tamper(filled, f"UPDATE checkpoints SET note = '{note}', root = '{bytes(32).hex()}' WHERE size = 21")
    code, result = verify(cli, filled)
    assert code == 1 and result["seq"] == 21 and "checkpoint" in result["error"]


def test_checkpoint_over_different_records(cli, filled, data_dir):
    """A correctly signed checkpoint whose root does not match the records (e.g. records rewritten
    and re-signed with a stolen key after the checkpoint) is reported at its size."""
    from appliance.keys import load_site_keys

    key = load_site_keys(data_dir / "keys").signing
    note = sign_checkpoint(Checkpoint(SITE_ID, 21, bytes(32)), SITE_ID, key)
    tamper(filled, f"UPDATE checkpoints SET note = '{note}', root = '{bytes(32).hex()}' WHERE size = 21")
    code, result = verify(cli, filled)
    assert code == 1 and result["seq"] == 21 and "does not match the records" in result["error"]


def test_missing_database_is_a_clear_error(cli, tmp_path, data_dir):
    (data_dir / "appliance.db").unlink()
    code, out, err = cli("journal", "verify", "--data", str(data_dir))
    assert code == 2 and "no database" in err
