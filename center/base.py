"""What the center's modules share: its name, its limits, the error every refusal raises."""

from __future__ import annotations

from datetime import timedelta

CENTER_NAME = "provincial-center"
MAX_BATCH = 5000
SIGNATURE_MAX_AGE = timedelta(minutes=5)
FUTURE_SKEW_S = 5  # a request signed this far in the center's future is still taken


class CenterError(ValueError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code
