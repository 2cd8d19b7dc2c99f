"""Sync benchmark (issue #7 §8), over loopback with the center in its own process.

1. **Drain**: a site with a backlog of N journal records (default 600,000: 30 busy days) sends
   it all to a fresh center (`Agent.sync_once`: batches with checkpoints and consistency
   proofs, every record verified at the center). Figures: seconds, records/s, bytes on the wire
   per record (the request bodies).
2. **Center ingest per core**: records the center verified and committed per CPU-second of the
   center process (from /proc), against the Ed25519 verification rate of this machine measured
   in the same run (`cryptography`, the same library the center verifies with). The ratio is the
   figure (goal ≥ 0.8).
3. **Media**: a segment-sized file (default 32 MiB) uploaded by tus (tuspy, 4 MiB chunks,
   sha256 checksums, signed requests, the center hashing the whole file against its seal)
   against a plain HTTP PUT of the same file to the same server stack (uvicorn and our WSGI bridge, written and
   fsynced, no signature, no hashing). The figure is PUT time / tus time (goal ≥ 0.9). A second
   baseline adds a SHA-256 of the file at both ends to the PUT (what any integrity check costs).

Run: ``python -m bench.sync [--records 600000] [--media-mib 32]`` from the checkout. Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import center_home, fork_call, kill_now, wait_for_port

PAYLOAD = {"gate": "gate-1", "direction": "in", "person_id": 1234, "id_masked": "220102********1002", "session": "S-0922-02",
           "allow": True, "reason": "allowed", "via": "card", "zone": "evaluation"}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(app_factory: Any, port: int) -> None:
    from appliance.webserver import WebServer

    WebServer(app_factory(), "127.0.0.1", port, threads=8, body_limit=lambda scope: (9 << 30, 64 << 20)).serve()


def _fork_server(app_factory: Any, port: int) -> int:
    pid = fork_call(_serve, app_factory, port)
    wait_for_port(port, pid)
    return pid


def ed25519_verify_rate(n: int = 20000) -> float:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    messages = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    sigs = [key.sign(m) for m in messages]
    t0 = time.process_time()
    for m, s in zip(messages, sigs):
        public.verify(s, m)
    return n / (time.process_time() - t0)


def _fill(site: Any, records: int) -> None:
    done = 0
    while done < records:
        n = min(5000, records - done)
        with site.store.transaction() as conn:
            site.journal.append_many(conn, [("gate.decision", {**PAYLOAD, "n": done + i}) for i in range(n)])
        done += n


class _Counting:
    """Counts request body bytes the agent sends (wraps the session's send)."""

    def __init__(self, http: Any) -> None:
        self.bytes = 0
        real = http.send

        def send(request: Any, **kwargs: Any) -> Any:
            self.bytes += len(request.body or b"")
            return real(request, **kwargs)
        http.send = send


def drain(tmp: Path, records: int) -> dict[str, Any]:
    from appliance.site import init_site, open_site
    from sync.agent import Agent, enroll
    from center.core import Center
    from center.api import create_center_app

    data = tmp / "site"
    init_site(data, "bench-site", "基准测试交易中心")
    site = open_site(data)
    t0 = time.monotonic()
    _fill(site, records)
    fill_s = time.monotonic() - t0
    center_dir = center_home(tmp / "center")
    c = Center(center_dir)
    token = c.add_site("bench-site")
    c.db.close()
    port = _free_port()
    center = _fork_server(lambda: create_center_app(Center(center_dir)), port)
    try:
        enroll(site, f"http://127.0.0.1:{port}", token)
        agent = Agent(site)
        counter = _Counting(agent.http)
        cpu0, t0 = _cpu_seconds(center), time.monotonic()
        result = agent.sync_once()
        elapsed = time.monotonic() - t0
        center_cpu = _cpu_seconds(center) - cpu0
    finally:
        kill_now(center)
        site.close()
    sent = result["sent"]
    return {"records": sent, "fill_s": round(fill_s, 1), "drain_s": round(elapsed, 1), "records_per_s": round(sent / elapsed),
            "bytes_per_record": round(counter.bytes / sent), "center_cpu_s": round(center_cpu, 1),
            "center_records_per_cpu_s": round(sent / center_cpu), "pending_after": result["pending"]}


def _put_app(folder: Path) -> Any:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        digest = hashlib.sha256() if "hash" in environ.get("QUERY_STRING", "") else None
        with open(folder / "put.bin", "wb") as f:
            left = length
            while left:
                block = stream.read(min(1 << 20, left))
                if not block:
                    break
                f.write(block)
                if digest is not None:
                    digest.update(block)
                left -= len(block)
            f.flush()
            os.fsync(f.fileno())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [digest.hexdigest().encode() if digest is not None else b""]
    return app


def media(tmp: Path, mib: int, rounds: int = 3) -> dict[str, Any]:
    import requests

    from appliance.site import init_site, open_site
    from sync import media as media_mod
    from sync.agent import Agent, enroll
    from center.core import Center
    from center.api import create_center_app

    data = tmp / "media-site"
    init_site(data, "bench-media", "基准测试交易中心")
    site = open_site(data)
    blob = os.urandom(mib << 20)
    center_dir = center_home(tmp / "media-center")
    c = Center(center_dir)
    token = c.add_site("bench-media")
    c.db.close()
    port, put_port = _free_port(), _free_port()
    put_dir = tmp / "put"
    put_dir.mkdir()
    center = _fork_server(lambda: create_center_app(Center(center_dir)), port)
    plain = _fork_server(lambda: _put_app(put_dir), put_port)
    tus_s, put_s, put_hashed_s = [], [], []
    try:
        enroll(site, f"http://127.0.0.1:{port}", token)
        agent = Agent(site)
        folder = data / "recordings" / "bench-cam"
        folder.mkdir(parents=True, exist_ok=True)
        for r in range(rounds):
            path = folder / f"seg-{r}.mp4"
            content = blob + r.to_bytes(4, "big")
            segment = bench_segment(site, path, content)
            agent.push_journal(int(agent._post("head", {})["size"]))
            t0 = time.perf_counter()
            media_mod.upload_segment(agent, segment)
            tus_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with open(path, "rb") as f:
                resp = requests.put(f"http://127.0.0.1:{put_port}/put", data=f, timeout=120,
                                    headers={"Content-Length": str(len(content))})
            put_s.append(time.perf_counter() - t0)
            assert resp.status_code == 200
            t0 = time.perf_counter()  # the same PUT with a SHA-256 of the file at both ends
            sent = hashlib.sha256(path.read_bytes()).hexdigest()
            with open(path, "rb") as f:
                resp = requests.put(f"http://127.0.0.1:{put_port}/put?hash=1", data=f, timeout=120,
                                    headers={"Content-Length": str(len(content))})
            assert resp.text == sent
            put_hashed_s.append(time.perf_counter() - t0)
        held = agent.media_held([segment["seq"]])
        assert held.get(str(segment["seq"])) == segment["sha256"], "the center does not hold the upload"
    finally:
        kill_now(center)
        kill_now(plain)
        site.close()
    tus_best, put_best, hashed_best = min(tus_s), min(put_s), min(put_hashed_s)
    return {"mib": mib, "chunk_mib": media_mod.CHUNK >> 20, "tus_s": [round(x, 3) for x in tus_s], "put_s": [round(x, 3) for x in put_s],
            "put_hashed_s": [round(x, 3) for x in put_hashed_s], "tus_mib_per_s": round(mib / tus_best, 1),
            "put_mib_per_s": round(mib / put_best, 1), "ratio_tus_to_put": round(put_best / tus_best, 3),
            "ratio_tus_to_hashed_put": round(hashed_best / tus_best, 3)}


def bench_segment(site: Any, path: Path, content: bytes) -> dict[str, Any]:
    """``content`` written to ``path`` and sealed as a session's segment, as the recorder seals
    one: its record journaled, its row in the footage catalogue; returns what the uploader takes."""
    path.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    now = datetime.now(timezone.utc)
    name = f"bench-cam/{path.name}"
    with site.store.transaction() as conn:
        record = site.journal.append(conn, "recording.segment", {
            "camera": "bench-cam", "room": "PB1", "file": name, "start": (now - timedelta(minutes=1)).isoformat(),
            "end": now.isoformat(), "duration_ms": 60000, "size": len(content), "sha256": digest, "chunk_size": 1 << 20,
            "chunks_sha256": "", "sessions": ["S-bench"]})
        seg_id = conn.execute(
            "INSERT INTO segments (camera, room, path, start, end, duration_ms, size, sha256, chunks, seq, sealed) "
            "VALUES ('bench-cam', 'PB1', ?, ?, ?, 60000, ?, ?, '', ?, ?)",
            (name, now.isoformat(), now.isoformat(), len(content), digest, record.seq, now.isoformat())).lastrowid
        conn.execute("INSERT INTO segment_sessions (segment, session) VALUES (?, 'S-bench')", (seg_id,))
    return {"id": seg_id, "path": name, "sha256": digest, "size": len(content), "seq": record.seq}


def run_benchmark(records: int = 600_000, media_mib: int = 32) -> dict[str, Any]:
    out: dict[str, Any] = {"benchmark": "sync"}
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        verify_before = ed25519_verify_rate()
        out["drain"] = drain(Path(tmp), records)
        verify_after = ed25519_verify_rate()
        out["ed25519_verify_per_s"] = round((verify_before + verify_after) / 2)
        out["center_ingest_ratio"] = round(out["drain"]["center_records_per_cpu_s"] / out["ed25519_verify_per_s"], 3)
        out["media"] = media(Path(tmp), media_mib)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=600_000)
    parser.add_argument("--media-mib", type=int, default=32)
    args = parser.parse_args()
    print(json.dumps(run_benchmark(args.records, args.media_mib)))


if __name__ == "__main__":
    main()
