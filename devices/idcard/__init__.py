"""Resident ID card readers (二代身份证阅读器) on the SAM serial protocol (115200 8N1).

``protocol`` — frames, checksums and status codes; ``text`` — the 256-byte text block of the
four card layouts; ``client`` — request/response over a serial transport; ``reader`` — the
find → select → read loop with debounce and reconnect; ``sim`` — a reader with cards, on a
pseudo-terminal.
"""
