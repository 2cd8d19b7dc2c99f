"""The evidence package's format constants, shared by the site that exports a session, the
center that exports one from what it received, and the verifier (docs/evidence.md)."""

from __future__ import annotations

import hashlib

FORMAT = "site-appliance/evidence/v1"
MANIFEST_CONTEXT = b"site-appliance/evidence-manifest/v1\n"  # the site's signature over the manifest
CENTER_MANIFEST_CONTEXT = b"provincial-center/evidence-manifest/v1\n"  # the center's, on a package it exported
CHUNK = 1 << 20  # segments are also hashed per MiB, so a changed byte can be located
# Unpacked sizes a verifier reads at most (a zip bomb is refused unread).
LIMITS = {"manifest.json": 32 << 20, "manifest.sig": 1 << 10, "site.pub": 4 << 10, "checkpoint.note": 4 << 10,
          "journal.jsonl": 512 << 20, "proofs.json": 64 << 20}
PARTS = tuple(LIMITS)
CENTER_PUB_LIMIT = 4 << 10  # center.pub, in a package the center exported
# A remote evaluation's package: each venue's package inside one ZIP, listed in remote.json and
# signed by the center (docs/evidence.md "A remote session").
REMOTE_FORMAT = "site-appliance/remote-evidence/v1"
REMOTE_MANIFEST_CONTEXT = b"provincial-center/remote-evidence-manifest/v1\n"
REMOTE_LIMITS = {"remote.json": 1 << 20, "remote.sig": 1 << 10, "center.pub": CENTER_PUB_LIMIT}
MAX_VENUES = 8


def chunks_root(chunks: list[str]) -> str:
    """SHA-256 over the concatenated raw chunk digests: signed in the segment's record."""
    return hashlib.sha256(b"".join(bytes.fromhex(c) for c in chunks)).hexdigest()
