"""Text to speech. The engine is pluggable (a venue may license a vendor TTS); the default is
espeak-ng, offline, with the ``cmn-latn-pinyin`` voice fed pinyin with tone numbers (pypinyin):
the plain ``cmn`` voice reads tone digits wrongly and mispronounces many characters."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from pypinyin import Style, lazy_pinyin

DIGITS = "零一二三四五六七八九"


class TtsError(RuntimeError):
    pass


class TtsEngine(Protocol):
    def synthesize(self, text: str) -> bytes:
        """A WAV file (any rate, mono, 16-bit) speaking ``text``."""
        ...


def number_to_chinese(number: int) -> str:
    """0–9999 as spoken (十二, 一百零五, 两千); longer numbers are read digit by digit."""
    if number >= 10_000:
        return "".join(DIGITS[int(d)] for d in str(number))
    if number < 10:
        return DIGITS[number]
    units = ["", "十", "百", "千"]
    digits = [int(d) for d in str(number)]
    out, zero = "", False
    for i, d in enumerate(digits):
        place = len(digits) - 1 - i
        if d == 0:
            zero = True
            continue
        if zero and out:
            out += "零"
        zero = False
        out += ("" if (d == 1 and place == 1 and i == 0) else DIGITS[d]) + units[place]
    return out


def to_pinyin(text: str) -> str:
    """Chinese text → tone-numbered pinyin for espeak-ng; numbers spoken, punctuation as pauses."""
    text = re.sub(r"\d+", lambda m: number_to_chinese(int(m.group(0))), text)
    text = re.sub(r"[，、；：,;:]", " , ", text)
    text = re.sub(r"[。！？!?.]", " . ", text)
    syllables = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors="default")
    return re.sub(r"\s+", " ", " ".join(syllables)).strip()


class EspeakEngine:
    voice = "cmn-latn-pinyin"

    def __init__(self, *, speed_wpm: int = 150, binary: str = "espeak-ng") -> None:
        self.speed_wpm = speed_wpm
        self.binary = binary

    def synthesize(self, text: str) -> bytes:
        if shutil.which(self.binary) is None:
            raise TtsError("espeak-ng is not installed (Debian package espeak-ng)")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "speech.wav"
            proc = subprocess.run(
                [self.binary, "-v", self.voice, "-s", str(self.speed_wpm), "-w", str(out), to_pinyin(text)],
                capture_output=True, text=True, timeout=30,
            )
            if proc.returncode != 0 or not out.exists():
                raise TtsError(f"espeak-ng failed: {proc.stderr.strip()}")
            return out.read_bytes()
