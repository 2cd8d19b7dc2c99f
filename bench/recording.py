"""Recording benchmark: CPU per recorded 1080p25 stream, coverage of wall time, and the time
from a segment's close to its sealed journal record.

A simulated camera (GStreamer, devices/camera/sim.py) serves one shared 1080p25 H.264 + AAC
stream at 4 Mbit/s on loopback; N recorders (ffmpeg, stream copy, as `appliance record` runs
them) pull it for the measured time. CPU is read from /proc for the ffmpeg processes (and
getrusage for this process, where the sealer runs). The baseline, in the same run, is one
ffmpeg pulling the same stream and discarding it (`-c copy -f null`): the cost of receiving,
which no recorder can avoid.

Run: ``python -m bench.recording [--streams 1 16] [--seconds 30] [--segment-s 5]`` from the
checkout. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from appliance.recording import RecorderService
from appliance.site import init_site, open_site
from bench.common import percentile
from devices.camera import SimulatedCamera

TICK = os.sysconf("SC_CLK_TCK")


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _baseline(url: str, seconds: float) -> float:
    """% of one core for one ffmpeg receiving the stream and discarding it."""
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-rtsp_transport", "tcp", "-i", url, "-map", "0",
                             "-c", "copy", "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)  # connected and steady
    before, t0 = _cpu_s(proc.pid), time.monotonic()
    time.sleep(seconds)
    used, wall = _cpu_s(proc.pid) - before, time.monotonic() - t0
    proc.terminate()
    proc.wait(5)
    return 100 * used / wall


def _record(url: str, streams: int, seconds: float, segment_s: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "site"
        init_site(data, "bench-site", "基准测试交易中心")
        cameras = "".join(f'[[recording.cameras]]\nname = "cam{i:02d}"\nroom = "R{i:02d}"\nurl = "{url}"\n' for i in range(streams))
        config = data / "appliance.toml"
        config.write_text(config.read_text() + f"\n[recording]\nsegment_s = {segment_s}\n{cameras}", encoding="utf-8")
        site = open_site(data)
        service = RecorderService(site)
        service.start()
        try:
            time.sleep(3)
            pids = [r.proc.pid for r in service.recorders.values() if r.proc is not None]
            before = sum(_cpu_s(p) for p in pids)
            self_before = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.monotonic()
            deadline = t0 + seconds
            while time.monotonic() < deadline:
                service.step()
                time.sleep(0.5)
            used = sum(_cpu_s(p) for p in pids) - before
            wall = time.monotonic() - t0
            self_after = resource.getrusage(resource.RUSAGE_SELF)
            restarts = sum(1 for r in service.recorders.values() if r.proc is None or r.proc.pid not in pids)
        finally:
            service.stop()
        rows = site.store.reader().execute("SELECT camera, start, end, duration_ms FROM segments ORDER BY camera, start").fetchall()
        site.close()
    coverage, gaps = [], []
    for cam in {r[0] for r in rows}:
        spans = [(_t(r[1]), _t(r[2])) for r in rows if r[0] == cam]
        covered, reach = 0.0, spans[0][0]
        for start, end in spans:  # the union of the segments' spans: overlaps count once, gaps not at all
            if start > reach:
                gaps.append(start - reach)
            covered += max(0.0, end - max(start, reach))
            reach = max(reach, end)
        coverage.append(covered / (reach - spans[0][0]))
    seal = [s for _, s in service.sealed]
    sealer = (self_after.ru_utime + self_after.ru_stime - self_before.ru_utime - self_before.ru_stime) / wall * 100
    return {
        "streams": streams, "seconds": round(wall, 1), "segments": len(rows), "restarts": restarts,
        "recorders_cpu_pct_of_one_core": round(100 * used / wall, 2),
        "per_stream_cpu_pct": round(100 * used / wall / streams, 3),
        "sealer_process_cpu_pct": round(sealer, 2),
        "coverage_min": round(min(coverage), 5) if coverage else 0.0,
        "largest_gap_s": round(max(gaps), 3) if gaps else 0.0,
        "seal_latency_s": {"n": len(seal), "p50": percentile(seal, 0.5), "max": round(max(seal), 3) if seal else None},
    }


def run_benchmark(streams: list[int], seconds: float, segment_s: int) -> dict[str, Any]:
    camera = SimulatedCamera("--width", "1920", "--height", "1080", "--fps", "25", "--bitrate", "4000")
    try:
        baseline = _baseline(camera.main, min(seconds, 20))
        runs = [_record(camera.main, n, seconds, segment_s) for n in streams]
    finally:
        camera.stop()
    for run in runs:
        run["per_stream_vs_receive_only"] = round(run["per_stream_cpu_pct"] / baseline, 2) if baseline else None
    return {"benchmark": "recording", "stream": "1920x1080 25 fps H.264 4 Mbit/s + AAC, RTSP/TCP on loopback",
            "baseline_receive_only_cpu_pct": round(baseline, 3), "runs": runs,
            "goals": {"per_stream_cpu_pct": 0.5, "16_streams_cpu_pct": 10, "coverage": 0.999, "seal_latency_s": 2}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--segment-s", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run_benchmark(args.streams, args.seconds, args.segment_s)))
