"""Credentials in text: a camera's RTSP URL carries its password (``rtsp://admin:secret@…``),
and ffmpeg and ffprobe repeat the URL in their errors. Anything that reaches the journal (signed,
permanent, synced to the province — it cannot be cleaned afterwards), a log, a screen or
`config show` goes through `hide_url_passwords` first."""

from __future__ import annotations

import re

# The password runs to the last "@" before the host (a camera password may hold "@": Admin@123),
# as URL parsers (ffmpeg's too) split user information from the host.
_URL_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^/\s]*)@(?=[^@/\s]*(?:[/\s]|$))")


def hide_url_passwords(text: str) -> str:
    """``rtsp://admin:S3cret@10.0.0.5/…`` → ``rtsp://admin:***@10.0.0.5/…``, anywhere in text."""
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
