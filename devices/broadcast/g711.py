"""ITU-T G.711 µ-law and A-law companding and RTP packets (RFC 3550; payload types 0 PCMU and
8 PCMA of RFC 3551: 8 kHz, 20 ms = 160 samples per packet). Pure functions."""

from __future__ import annotations

import struct

BIAS, CLIP = 0x84, 32635
SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz
PCMU, PCMA = 0, 8


def linear_to_ulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, CLIP) + BIAS
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_to_linear(code: int) -> int:
    code = ~code & 0xFF
    exponent, mantissa = (code >> 4) & 0x07, code & 0x0F
    magnitude = ((mantissa << 3) + BIAS) << exponent
    magnitude -= BIAS
    return -magnitude if code & 0x80 else magnitude


def linear_to_alaw(sample: int) -> int:
    sign = 0x80 if sample >= 0 else 0
    magnitude = min(-sample - 1 if sample < 0 else sample, 32767) >> 3  # 13-bit
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5
        code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    return (sign | code) ^ 0x55


def alaw_to_linear(code: int) -> int:
    code ^= 0x55
    exponent, mantissa = (code >> 4) & 0x07, code & 0x0F
    magnitude = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if code & 0x80 else -magnitude


def encode(pcm16: bytes, payload_type: int) -> bytes:
    samples = struct.unpack(f"<{len(pcm16) // 2}h", pcm16[: len(pcm16) // 2 * 2])
    convert = linear_to_ulaw if payload_type == PCMU else linear_to_alaw
    return bytes(convert(s) for s in samples)


def rtp_packets(payload: bytes, *, payload_type: int, ssrc: int, sequence: int = 0, timestamp: int = 0) -> list[bytes]:
    """Split G.711 bytes into 20 ms RTP packets (the last one padded with silence)."""
    silence = 0xFF if payload_type == PCMU else 0xD5
    packets = []
    for i in range(0, len(payload), SAMPLES_PER_PACKET):
        chunk = payload[i : i + SAMPLES_PER_PACKET].ljust(SAMPLES_PER_PACKET, bytes([silence]))
        marker = 0x80 if i == 0 else 0  # first packet of a talk spurt
        header = struct.pack(">BBHII", 0x80, marker | payload_type, (sequence + len(packets)) & 0xFFFF,
                             (timestamp + i) & 0xFFFFFFFF, ssrc)
        packets.append(header + chunk)
    return packets
