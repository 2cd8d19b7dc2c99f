"""`appliance journal verify` as an independent auditor tried it: the key's three copies and a key
held elsewhere, damage that used to crash it (bytes that are not UTF-8, a BLOB body), JSON types
and formats checked exactly, and records appended by commands always covered by a checkpoint."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from appliance.journal import RECORD_SIGNING_CONTEXT
from appliance.keys import fingerprint, load_site_keys
from appliance.merkle import CompactRange, leaf_hash
from appliance.signednote import Checkpoint, sign_checkpoint, verifier_key
from tests.helpers import SITE_ID, csrf_token, json_line


@pytest.fixture
def filled(site, data_dir):
    for i in range(20):
        site.journal.record("staff.note", {"text": f"巡场记录 {i}", "author": "staff"})
    site.close()
    return data_dir


def verify(cli, data_dir, *extra):
    code, out, err = cli("journal", "verify", "--data", str(data_dir), *extra)
    assert out.strip(), err
    return code, json_line(out)


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rows(data_dir):
    conn = sqlite3.connect(data_dir / "appliance.db")
    out = conn.execute("SELECT seq, body FROM journal ORDER BY seq").fetchall()
    conn.close()
    return out


def rewrite(data_dir, key: Ed25519PrivateKey, mutate=lambda seq, obj: obj, *, sig_text=None, only=None):
    """Re-sign the journal with ``key`` after ``mutate`` (every record, or ``only`` one), rebuild
    the chain and the checkpoints — what an attacker holding ``key`` can do."""
    conn = sqlite3.connect(data_dir / "appliance.db")
    prev, tree = "0" * 64, CompactRange()
    with conn:
        for seq, body in conn.execute("SELECT seq, body FROM journal ORDER BY seq").fetchall():
            obj = json.loads(body)
            obj["prev"] = prev
            if only is None or seq == only:
                obj = mutate(seq, obj)
            text = canonical(obj)
            digest = hashlib.sha256(text.encode()).digest()
            sig = base64.b64encode(key.sign(RECORD_SIGNING_CONTEXT + digest)).decode()
            if sig_text is not None and seq == only:
                sig = sig_text(sig)
            conn.execute("UPDATE journal SET body = ?, hash = ?, sig = ? WHERE seq = ?", (text, digest.hex(), sig, seq))
            prev = digest.hex()
            tree.append(leaf_hash(digest))
        conn.execute("DELETE FROM checkpoints")
        note = sign_checkpoint(Checkpoint(SITE_ID, tree.size, tree.root()), SITE_ID, key)
        conn.execute("INSERT INTO checkpoints (size, root, note, created) VALUES (?, ?, ?, '2026-12-06T00:00:00.000000Z')",
                     (tree.size, tree.root().hex(), note))
    conn.close()
    (data_dir / "journal-checkpoint").write_text(note, encoding="utf-8")


def new_key_everywhere(data_dir, key: Ed25519PrivateKey) -> None:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def mutate(seq, obj):
        if seq == 1:
            obj["payload"]["public_key"] = raw.hex()
            obj["payload"]["verifier_key"] = verifier_key(SITE_ID, key.public_key())
        return obj

    rewrite(data_dir, key, mutate)
    conn = sqlite3.connect(data_dir / "appliance.db")
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'public_key'", (raw.hex(),))
    conn.close()
    (data_dir / "keys" / "site.pub").write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    (data_dir / "keys" / "site.key").write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))


def test_init_prints_the_fingerprint_the_verdict_repeats(cli, tmp_path):
    code, out, _ = cli("init", "--data", str(tmp_path / "s"), "--site-id", SITE_ID, "--site-name", "某县")
    printed = json_line(out)
    key = load_site_keys(tmp_path / "s" / "keys").public
    assert code == 0 and printed["key_fingerprint"] == fingerprint(key)
    assert printed["key_fingerprint"] == hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()
    assert printed["key_fingerprint_grouped"].replace(" ", "") == printed["key_fingerprint"]
    code, verdict = verify(cli, tmp_path / "s")
    assert code == 0 and verdict["key_fingerprint"] == printed["key_fingerprint"] and verdict["key_pinned"] is False


def test_a_full_rewrite_under_a_new_key_fails_against_the_key_written_down(cli, filled, tmp_path):
    original = load_site_keys(filled / "keys").public
    held_elsewhere = tmp_path / "site.pub"
    shutil.copy(filled / "keys" / "site.pub", held_elsewhere)
    new_key_everywhere(filled, Ed25519PrivateKey.generate())
    code, verdict = verify(cli, filled)  # self-consistent: only the fingerprint shows it
    assert code == 0 and verdict["key_fingerprint"] != fingerprint(original)
    code, verdict = verify(cli, filled, "--fingerprint", fingerprint(original).upper())
    assert code == 1 and verdict["seq"] == 1 and verdict["where"] == "key" and verdict["key_pinned"] is True
    code, verdict = verify(cli, filled, "--key", str(held_elsewhere))
    assert code == 1 and verdict["seq"] == 1 and verdict["where"] == "key"
    assert verdict["key_fingerprint"] == fingerprint(original)


def test_the_right_pinned_key_passes_in_either_form(cli, filled, tmp_path):
    key = load_site_keys(filled / "keys").public
    vkey = tmp_path / "vkey.txt"
    vkey.write_text(verifier_key(SITE_ID, key) + "\n")
    grouped = " ".join(fingerprint(key)[i:i + 4] for i in range(0, 64, 4))
    for extra in (("--key", str(filled / "keys" / "site.pub")), ("--key", str(vkey)), ("--fingerprint", grouped)):
        code, verdict = verify(cli, filled, *extra)
        assert code == 0 and verdict["records"] == 21 and verdict["key_pinned"] is True


def test_a_bad_fingerprint_argument_is_unusable_input(cli, filled):
    code, out, err = cli("journal", "verify", "--data", str(filled), "--fingerprint", "abc")
    assert code == 2 and "--fingerprint" in err and out == ""


@pytest.mark.parametrize("copy", ["site.pub", "meta", "record 1"])
def test_one_copy_of_the_key_replaced_fails(cli, filled, copy):
    other = Ed25519PrivateKey.generate()
    if copy == "site.pub":
        (filled / "keys" / "site.pub").write_bytes(other.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    elif copy == "meta":
        conn = sqlite3.connect(filled / "appliance.db")
        with conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'public_key'",
                         (other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex(),))
        conn.close()
    else:  # record 1 re-signed by the true key but naming another one
        key = load_site_keys(filled / "keys").signing

        def mutate(seq, obj):
            obj["payload"]["public_key"] = other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
            return obj

        rewrite(filled, key, mutate, only=1)
    code, verdict = verify(cli, filled)
    assert code == 1 and verdict["ok"] is False and verdict["seq"] == 1


def damage_body(data_dir, seq, sql_value):
    conn = sqlite3.connect(data_dir / "appliance.db")
    with conn:
        conn.execute(f"UPDATE journal SET body = {sql_value} WHERE seq = ?", (seq,))
    conn.close()


@pytest.mark.parametrize("how", ["invalid_utf8", "blob"])
def test_damaged_storage_gives_the_verdict_not_a_traceback(cli, filled, how):
    body = dict(rows(filled))[7].encode()
    if how == "invalid_utf8":  # one changed byte: the first byte of a Chinese character
        i = body.index("巡".encode())
        damaged = body[:i] + b"\xff" + body[i + 1:]
        damage_body(filled, 7, f"CAST(X'{damaged.hex()}' AS TEXT)")
    else:
        damage_body(filled, 7, f"X'{body.hex()}'")
    code, verdict = verify(cli, filled)
    assert code == 1 and verdict["seq"] == 7 and verdict["records_ok"] == 6
    assert ("UTF-8" in verdict["error"]) if how == "invalid_utf8" else ("BLOB" in verdict["error"])
    code, out, _ = cli("journal", "show", "--data", str(filled))
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and [r["seq"] for r in lines[:-1]] == list(range(1, 7))
    assert lines[-1]["ok"] is False and lines[-1]["seq"] == 7
    assert (lines[-1]["site"], lines[-1]["key_fingerprint"]) == (verdict["site"], verdict["key_fingerprint"])


def test_a_database_that_is_not_sqlite_gives_a_verdict(cli, filled):
    (filled / "appliance.db-wal").unlink(missing_ok=True)
    (filled / "appliance.db").write_bytes(b"this is not a database" * 100)
    code, verdict = verify(cli, filled)
    assert code == 1 and verdict["ok"] is False and verdict["seq"] == 1


def flip_unused_bits(sig: str) -> str:
    """The same 64 bytes, written with a last base64 character whose unused bits are set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(sig[85])
    return sig[:85] + alphabet[last | 1] + "==" if last % 2 == 0 else sig[:85] + alphabet[last & ~1] + "=="


@pytest.mark.parametrize("what,seq,mutate,expected", [
    ("v true", 12, lambda s, o: {**o, "v": True}, "v must be the integer"),
    ("seq true", 1, lambda s, o: {**o, "seq": True}, "seq must be an integer"),
    ("array payload", 12, lambda s, o: {**o, "payload": [o["payload"]]}, "payload must be a JSON object"),
    ("ts without microseconds", 12, lambda s, o: {**o, "ts": o["ts"][:19] + "Z"}, "microseconds"),
    ("ts impossible date", 12, lambda s, o: {**o, "ts": "2026-02-30T08:00:00.000000Z"}, "RFC 3339"),
    ("upper-case prev", 12, lambda s, o: {**o, "prev": o["prev"].upper()}, "prev must be 64 lowercase"),
    ("string v", 12, lambda s, o: {**o, "v": "1"}, "v must be the integer"),
])
def test_json_types_and_formats_are_checked_exactly(cli, filled, what, seq, mutate, expected):
    rewrite(filled, load_site_keys(filled / "keys").signing, mutate, only=seq)
    code, verdict = verify(cli, filled)
    assert code == 1 and verdict["seq"] == seq and verdict["where"] == "record", what
    assert expected in verdict["error"], verdict


def test_a_signature_in_non_canonical_base64_is_refused(cli, filled):
    key = load_site_keys(filled / "keys").signing
    rewrite(filled, key, only=9, sig_text=flip_unused_bits)
    sig = sqlite3.connect(filled / "appliance.db").execute("SELECT sig FROM journal WHERE seq = 9").fetchone()[0]
    assert base64.b64decode(sig) == base64.b64decode(flip_unused_bits(sig))  # the same bytes, another text
    code, verdict = verify(cli, filled)
    assert code == 1 and verdict["seq"] == 9 and "canonical base64" in verdict["error"]


def test_a_checkpoint_with_an_extension_line_or_a_second_signature_is_refused(cli, filled):
    key = load_site_keys(filled / "keys").signing
    rewrite(filled, key)  # one clean checkpoint at 21
    conn = sqlite3.connect(filled / "appliance.db")
    root = bytes.fromhex(conn.execute("SELECT root FROM checkpoints").fetchone()[0])
    extended = sign_checkpoint(Checkpoint(SITE_ID, 21, root, ("extra",)), SITE_ID, key)
    with conn:
        conn.execute("UPDATE checkpoints SET note = ?", (extended,))
    conn.close()
    (filled / "journal-checkpoint").unlink()
    code, verdict = verify(cli, filled)
    assert code == 1 and verdict["where"] == "checkpoint" and verdict["checkpoint"] == 21
    assert "extension" in verdict["error"]


def test_the_checkpoint_file_must_equal_its_table_row_byte_for_byte(cli, filled):
    path = filled / "journal-checkpoint"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n", 1))
    code, verdict = verify(cli, filled)
    assert code == 1 and verdict["where"] == "checkpoint_file"


def test_records_appended_by_commands_are_covered_so_deleting_them_is_caught(cli, tmp_path):
    data = tmp_path / "s"
    cli("init", "--data", str(data), "--site-id", SITE_ID, "--site-name", "某县")
    for i in range(5):
        code, _, _ = cli("note", "--data", str(data), f"第{i}条")
        assert code == 0
    conn = sqlite3.connect(data / "appliance.db")
    assert conn.execute("SELECT MAX(size) FROM checkpoints").fetchone()[0] == 6
    with conn:  # an attacker deletes all but the first record, and every checkpoint row
        conn.execute("DELETE FROM journal WHERE seq > 1")
        conn.execute("DELETE FROM checkpoints WHERE size > 1")
    conn.close()
    code, verdict = verify(cli, data)
    assert code == 1 and verdict["seq"] == 2 and verdict["where"] in ("checkpoint_file", "truncation")


def test_a_short_command_resumes_the_tree_from_the_stored_range(site, data_dir):
    for i in range(50):
        site.journal.record("staff.note", {"n": i})
    site.close()
    from appliance.site import open_site

    with open_site(data_dir) as again:
        again.journal.record("staff.note", {"n": "last"})
    conn = sqlite3.connect(data_dir / "appliance.db")
    size, root = conn.execute("SELECT size, root FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    hashes = [bytes.fromhex(h) for (h,) in conn.execute("SELECT hash FROM journal ORDER BY seq")]
    tree = CompactRange()
    for h in hashes:
        tree.append(leaf_hash(h))
    assert size == 52 and root == tree.root().hex()


def test_a_damaged_record_is_named_on_the_review_pages_not_a_crash(login, web_site):
    supervisor = login("supervisor")
    seq = web_site.journal.count()
    conn = sqlite3.connect(web_site.store.path)
    with conn:
        conn.execute("UPDATE journal SET body = CAST(X'7bff' AS TEXT) WHERE seq = ?", (seq,))  # not UTF-8, not JSON
    conn.close()
    # The review room stays readable around it, and a check run there shows its verdict.
    page = supervisor.get("/review/journal")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and '<tr class="damaged"><td>%d</td>' % seq in text
    assert f"<tr><td>{seq - 1}</td>" in text  # the records around it are shown
    checked = supervisor.post("/review/verify", data={"csrf_token": csrf_token(page)})
    assert checked.status_code == 200 and f"第 {seq} 条记录处受损" in checked.get_data(as_text=True).split('id="verify-result"')[1][:300]
    # A page that needs that very record, and the API, name it.
    api = supervisor.get(f"/api/v1/journal?since={seq - 1}")
    assert api.status_code == 500 and api.get_json() == {"error": "journal_damaged", "seq": seq}


def test_the_console_and_the_status_api_show_the_key_fingerprint(login, web_site):
    staff = login("staff")
    expected = fingerprint(web_site.public_key)
    status = staff.get("/api/v1/status").get_json()["journal"]
    assert status["key_fingerprint"] == expected
    assert status["key_fingerprint_grouped"] == " ".join(expected[i:i + 4] for i in range(0, 64, 4))
    assert status["key_fingerprint_grouped"] in staff.get("/console/").get_data(as_text=True)
