"""The error every part of the site's sync raises (the agent, the recordings' uploads)."""

from __future__ import annotations


class SyncError(RuntimeError):
    def __init__(self, message: str, code: str = "unreachable") -> None:
        super().__init__(message)
        self.code = code  # "unreachable" (no link), or the center's error code
