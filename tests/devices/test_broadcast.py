"""Broadcast: real espeak-ng (pinyin voice), real sox/ffprobe checks of the WAV, G.711 and RTP
over loopback UDP, and the priority queue."""

import json
import socket
import struct
import subprocess
import threading
import time

import pytest

from devices.broadcast import g711
from devices.broadcast.announcer import Announcer, Priority
from devices.broadcast.audio import FileSink, RtpSink, read_wav, write_wav
from devices.broadcast.tts import EspeakEngine, number_to_chinese, to_pinyin


@pytest.mark.parametrize("n, spoken", [(0, "零"), (7, "七"), (10, "十"), (12, "十二"), (20, "二十"), (105, "一百零五"),
                                       (1001, "一千零一"), (3400, "三千四百"), (123456, "一二三四五六")])
def test_numbers_are_spoken(n, spoken):
    assert number_to_chinese(n) == spoken


def test_pinyin_with_tone_numbers():
    assert to_pinyin("请12号专家到答疑室。") == "qing3 shi2 er4 hao4 zhuan1 jia1 dao4 da2 yi2 shi4 ."


def ffprobe_duration(path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=sample_rate,channels",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)["format"]["duration"])


def test_announcement_is_spoken_to_a_wav_of_mandarin_length(tmp_path):
    out = tmp_path / "call.wav"
    played = []
    announcer = Announcer(EspeakEngine(), FileSink(out), on_played=played.append).start()
    text = "请北京某某建设有限公司代表到答疑室"  # 17 syllables
    announcer.announce(text, priority=Priority.CALL)
    deadline = time.monotonic() + 20
    while not played and time.monotonic() < deadline:
        time.sleep(0.05)
    announcer.stop()
    assert played and played[0].error is None
    duration = ffprobe_duration(out)
    sox = float(subprocess.run(["soxi", "-D", str(out)], capture_output=True, text=True, check=True).stdout)
    assert abs(duration - sox) < 0.05
    # chime (0.9 s) + gap (0.2 s) + 17 syllables at 2.5–7 syllables per second
    assert 1.1 + 17 / 7 < duration < 1.1 + 17 / 2.5
    import hashlib
    assert played[0].audio_sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    # Not silence: speech energy after the chime.
    rate, pcm = read_wav(out.read_bytes())
    speech = struct.unpack(f"<{len(pcm) // 2}h", pcm)[int(rate * 1.2):]
    assert max(abs(s) for s in speech) > 3000


def test_priority_queue_plays_one_at_a_time_highest_first(tmp_path):
    order, overlapping = [], []

    class SlowSink:
        busy = False

        def play(self, pcm, rate):
            overlapping.append(SlowSink.busy)
            SlowSink.busy = True
            time.sleep(0.05)
            SlowSink.busy = False

    class InstantTts:
        def synthesize(self, text):
            return write_wav(bytes(3200), 16000)

    announcer = Announcer(InstantTts(), SlowSink(), on_played=lambda p: order.append(p.text))
    announcer.announce("通知一", priority=Priority.INFORMATION)
    announcer.announce("呼叫一", priority=Priority.CALL)
    announcer.announce("紧急疏散", priority=Priority.EMERGENCY)
    announcer.announce("通知二", priority=Priority.INFORMATION)
    announcer.start()
    deadline = time.monotonic() + 5
    while len(order) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    announcer.stop()
    assert order == ["紧急疏散", "呼叫一", "通知一", "通知二"]
    assert not any(overlapping)


@pytest.mark.parametrize("sample", [0, 1, -1, 100, -100, 1000, -5000, 32767, -32768, 12345])
def test_g711_round_trips_within_quantisation(sample):
    for encode, decode in ((g711.linear_to_ulaw, g711.ulaw_to_linear), (g711.linear_to_alaw, g711.alaw_to_linear)):
        back = decode(encode(sample))
        assert abs(back - sample) <= max(16, abs(sample) // 16)


def test_g711_reference_codes():
    # ITU-T G.711: silence is 0xFF in µ-law and 0xD5 in A-law; full scale positive 0x80 / 0xAA.
    assert g711.linear_to_ulaw(0) == 0xFF and g711.linear_to_alaw(0) == 0xD5
    assert g711.linear_to_ulaw(32767) == 0x80 and g711.linear_to_alaw(32767) == 0xAA
    assert g711.linear_to_ulaw(-32768) == 0x00 and g711.linear_to_alaw(-32768) == 0x2A


def test_rtp_to_an_ip_speaker_on_loopback():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    packets, arrivals = [], []

    def listen():
        try:
            while True:
                data = receiver.recv(2048)
                packets.append(data)
                arrivals.append(time.monotonic())
        except OSError:
            pass

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    pcm = struct.pack("<16000h", *([8000, -8000] * 8000))  # 1 s at 16 kHz
    RtpSink("127.0.0.1", receiver.getsockname()[1]).play(pcm, 16000)
    time.sleep(0.3)
    receiver.close()
    thread.join(3)
    assert len(packets) == 50  # 1 s in 20 ms packets
    headers = [struct.unpack(">BBHII", p[:12]) for p in packets]
    assert all(h[0] == 0x80 and (h[1] & 0x7F) == g711.PCMU and len(p) == 12 + 160 for h, p in zip(headers, packets))
    assert headers[0][1] & 0x80 and not any(h[1] & 0x80 for h in headers[1:])  # marker on the first
    assert all((b[2] - a[2]) & 0xFFFF == 1 and (b[3] - a[3]) & 0xFFFFFFFF == 160 for a, b in zip(headers, headers[1:]))
    assert len({h[4] for h in headers}) == 1
    span = arrivals[-1] - arrivals[0]
    assert 0.9 < span < 1.3  # paced in real time, 20 ms apart
