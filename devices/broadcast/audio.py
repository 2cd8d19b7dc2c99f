"""Audio plumbing: WAV in and out, resampling to 8 kHz, a chime, and the output sinks."""

from __future__ import annotations

import io
import math
import random
import socket
import struct
import subprocess
import threading
import time
import wave
from pathlib import Path
from typing import Protocol

from devices.broadcast import g711

RATE = 16000  # the queue's working format: mono, 16-bit, 16 kHz


class SinkError(RuntimeError):
    pass


def read_wav(data: bytes) -> tuple[int, bytes]:
    """(sample rate, mono 16-bit PCM) of a WAV file."""
    with wave.open(io.BytesIO(data)) as w:
        if w.getsampwidth() != 2:
            raise SinkError("only 16-bit WAV is supported")
        frames = w.readframes(w.getnframes())
        if w.getnchannels() == 2:
            samples = struct.unpack(f"<{len(frames) // 2}h", frames)
            frames = struct.pack(f"<{len(samples) // 2}h", *((samples[i] + samples[i + 1]) // 2 for i in range(0, len(samples), 2)))
        return w.getframerate(), frames


def write_wav(pcm: bytes, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def resample(pcm: bytes, source: int, target: int) -> bytes:
    """Resample mono 16-bit PCM: a short moving-average low-pass, then linear interpolation.
    Good enough for speech announcements; not for music."""
    if source == target or not pcm:
        return pcm
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    if target < source:  # low-pass before decimating, to limit aliasing
        width = max(1, round(source / target))
        acc, filtered = 0, []
        for i, s in enumerate(samples):
            acc += s - (samples[i - width] if i >= width else 0)
            filtered.append(acc // min(i + 1, width))
        samples = tuple(filtered)
    n = int(len(samples) * target / source)
    out = []
    for i in range(n):
        pos = i * source / target
        j = int(pos)
        frac = pos - j
        nxt = samples[j + 1] if j + 1 < len(samples) else samples[j]
        out.append(int(samples[j] + (nxt - samples[j]) * frac))
    return struct.pack(f"<{n}h", *out)


def chime(rate: int = RATE) -> bytes:
    """A two-tone chime (叮咚), 0.9 s, fading out."""
    out = []
    for freq, length in ((880.0, 0.45), (659.25, 0.45)):
        n = int(rate * length)
        for i in range(n):
            env = math.exp(-4.0 * i / n)
            out.append(int(12000 * env * math.sin(2 * math.pi * freq * i / rate)))
    return struct.pack(f"<{len(out)}h", *out)


class Sink(Protocol):
    def play(self, pcm: bytes, rate: int) -> None: ...


class FileSink:
    """Writes each announcement to a WAV file (tests, diagnostics, archives)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def play(self, pcm: bytes, rate: int) -> None:
        self.path.write_bytes(write_wav(pcm, rate))


class AlsaSink:
    """Plays on a local ALSA device through aplay (package alsa-utils)."""

    def __init__(self, device: str = "default") -> None:
        self.device = device

    def play(self, pcm: bytes, rate: int) -> None:
        proc = subprocess.run(["aplay", "-q", "-D", self.device, "-t", "raw", "-f", "S16_LE", "-r", str(rate), "-c", "1"],
                              input=pcm, capture_output=True, timeout=600)
        if proc.returncode:
            raise SinkError(f"aplay failed: {proc.stderr.decode(errors='replace').strip()}")


class RtpSink:
    """IP speakers: RTP over UDP, G.711 at 8 kHz, one packet every 20 ms."""

    def __init__(self, host: str, port: int, *, payload_type: int = g711.PCMU) -> None:
        self.address = (host, port)
        self.payload_type = payload_type
        self.ssrc = random.getrandbits(32)
        self.sequence = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)

    def play(self, pcm: bytes, rate: int) -> None:
        payload = g711.encode(resample(pcm, rate, 8000), self.payload_type)
        packets = g711.rtp_packets(payload, payload_type=self.payload_type, ssrc=self.ssrc,
                                   sequence=self.sequence, timestamp=self.timestamp)
        self.sequence = (self.sequence + len(packets)) & 0xFFFF
        self.timestamp = (self.timestamp + len(packets) * g711.SAMPLES_PER_PACKET) & 0xFFFFFFFF
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            start = time.monotonic()
            for i, packet in enumerate(packets):
                delay = start + i * 0.020 - time.monotonic()  # paced in real time
                if delay > 0:
                    time.sleep(delay)
                sock.sendto(packet, self.address)


class ZoneRouter:
    """Speakers by zone, the way a venue's PA matrix switches zone outputs: one announcement
    plays at the same time on every speaker that covers one of its zones. An announcement to
    ``all`` plays everywhere; a speaker covering ``all`` plays every announcement. A zone nobody
    covers is an error, so a call never silently goes nowhere."""

    def __init__(self, speakers: list[tuple[str, frozenset[str], Sink]]) -> None:
        self.speakers = speakers

    def covering(self, zones: tuple[str, ...]) -> list[tuple[str, Sink]]:
        wanted = set(zones)
        return [(name, sink) for name, covered, sink in self.speakers if "all" in wanted or "all" in covered or covered & wanted]

    def play_zones(self, pcm: bytes, rate: int, zones: tuple[str, ...]) -> list[str]:
        chosen = self.covering(zones)
        if not chosen:
            raise SinkError(f"no speaker covers zone {', '.join(zones)}")
        errors: list[str] = []

        def play(name: str, sink: Sink) -> None:
            try:
                sink.play(pcm, rate)
            except Exception as exc:  # one broken speaker must not silence the others
                errors.append(f"{name}: {exc}")

        threads = [threading.Thread(target=play, args=pair) for pair in chosen]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SinkError("; ".join(sorted(errors)))
        return [name for name, _ in chosen]

    def play(self, pcm: bytes, rate: int) -> None:
        self.play_zones(pcm, rate, ("all",))
