"""The request body for the center's views, read once."""

from __future__ import annotations

from collections.abc import Iterator

from flask import g, request


def body_blocks(size: int = 1 << 20) -> Iterator[bytes]:
    """The request body in blocks of up to ``size`` bytes, as few reads as the socket allows
    (werkzeug's ``get_data`` reads in 8 KiB steps: a third of a tus chunk's cost at the center).
    A body sent with ``Transfer-Encoding: chunked`` (no Content-Length) is read to its end."""
    left = request.content_length
    while left is None or left > 0:
        block = request.stream.read(size if left is None else min(left, size))
        if not block:
            break
        if left is not None:
            left -= len(block)
        yield block


def raw_body() -> bytes:
    """The request body, read once."""
    if "raw_body" not in g:
        g.raw_body = b"".join(body_blocks())
    return g.raw_body
