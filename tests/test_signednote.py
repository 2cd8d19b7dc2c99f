"""C2SP signed notes and checkpoints, checked against the reference example of
golang.org/x/mod/sumdb/note (the PeterNeumann key), byte for byte."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.signednote import (
    Checkpoint,
    NoteError,
    open_checkpoint,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
    verify_note,
)

VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
NOTE = TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"


def reference_private_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(SKEY.split("+", 4)[4])  # the key material may contain "+"
    assert raw[0] == 1
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


def test_reference_note_is_reproduced_byte_for_byte():
    key = reference_private_key()
    assert verifier_key("PeterNeumann", key.public_key()) == VKEY
    assert sign_note(TEXT, "PeterNeumann", key) == NOTE


def test_reference_note_verifies_and_a_changed_byte_does_not():
    name, public = parse_verifier_key(VKEY)
    assert verify_note(NOTE, name, public) == TEXT
    with pytest.raises(NoteError):
        verify_note(NOTE.replace("cryptography", "cryptographY"), name, public)


def test_checkpoint_round_trip_and_origin_check():
    key = Ed25519PrivateKey.generate()
    cp = Checkpoint("demo-county-01", 42, bytes(range(32)))
    note = sign_checkpoint(cp, "demo-county-01", key)
    assert note.startswith("demo-county-01\n42\n" + base64.b64encode(bytes(range(32))).decode() + "\n\n\u2014 ")
    assert open_checkpoint(note, "demo-county-01", key.public_key()) == cp
    other = Ed25519PrivateKey.generate()
    with pytest.raises(NoteError):
        open_checkpoint(note, "demo-county-01", other.public_key())


@pytest.mark.parametrize(
    "text",
    ["origin\n", "origin\n01\n" + "A" * 44 + "\n", "origin\n-1\nAAAA\n", "origin\n3\nAAAA\n", "origin\n3\n" + "A" * 44],
)
def test_malformed_checkpoints_are_refused(text):
    with pytest.raises(NoteError):
        parse_checkpoint(text)
