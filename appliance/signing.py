"""What a journal record's Ed25519 signature covers, shared by everything that signs or checks
one: the site's journal, its evidence packages, the center's ingest and independent verifiers
(docs/journal.md, "Signatures"). The domain separation prefix keeps a record signature from
ever being valid as a signature over anything else the site signs (notes, statements)."""

from __future__ import annotations

RECORD_SIGNING_CONTEXT = b"site-appliance/journal-record/v1\n"


def record_message(digest: bytes) -> bytes:
    """The bytes signed for a record: the context, then the record's SHA-256 (32 bytes)."""
    return RECORD_SIGNING_CONTEXT + digest


# The screens a main venue sends to a remote committee's other venues (docs/remote-evaluation.md):
# what each member there sees, signed by the main venue's key under this purpose line over the
# SHA-256 of the screens' JSON text. Relayed journal records keep their own record signature.
SCREENS_SIGNING_CONTEXT = b"site-appliance/relay-screens/v1\n"


def screens_message(digest: bytes) -> bytes:
    """The bytes signed for a relayed screens message: the context, then the text's SHA-256."""
    return SCREENS_SIGNING_CONTEXT + digest


# A file that belongs to a relayed record but is personal data and so is kept out of journals: a
# secondary member's report signature (the record carries its SHA-256). Signed by the sending
# venue over this purpose line and the SHA-256 of the message's JSON text.
ATTACHMENT_SIGNING_CONTEXT = b"site-appliance/relay-attachment/v1\n"


def attachment_message(digest: bytes) -> bytes:
    return ATTACHMENT_SIGNING_CONTEXT + digest
