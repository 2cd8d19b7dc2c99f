"""The center at province scale (issue #15), on this box: PostgreSQL (a private cluster, fsync
on) and ``python -m center.workers`` (the supervisor and its worker processes), real sites
(`appliance.site`, their journals filled with signed records) sending with the real agent
(`sync.agent.Agent`: RFC 9421-signed requests, batches with checkpoints and consistency
proofs) over loopback.

1. **A province's day**: ``--sites`` venues × ``--records`` records each, synced concurrently
   (``--agents`` agent processes share the venues) into 2 workers. Seconds from the first round
   to every head equal; every record verified by the center; the p99 of a sync round.
2. **Ingest per CPU-second**: records the center committed per CPU-second of its worker
   processes (from /proc; PostgreSQL's own CPU reported beside it), ÷ the Ed25519 verify rate
   of the library in use (`cryptography`), measured in the same run.
3. **2 workers ÷ 1 worker**: the same workload (``--scale-sites`` venues at once) into 1 then 2
   workers, records/s.
4. **A 600,000-record backlog** from one venue, into 2 workers.
5. **tus ÷ PUT through a shaped link** (a userspace shaper in this file: 100 Mbit/s each way,
   15 ms each way = 30 ms RTT): a 32 MiB segment by tus (4 MiB PATCHes, signed, hashed) against a
   plain HTTP PUT of the same bytes through the same shaper to the same server stack.

The agents run on the same two cores as the center and PostgreSQL (a venue is another machine
in a province): the figures are for one box doing all three. Prints one JSON object with the
issue's keys: province_day_s, ingest_per_cpu_s_vs_verify, workers_2_vs_1, backlog_600k_s,
tus_vs_put_shaped, round_p99_s, records_verified, heads_equal.

    python -m bench.center [--sites 120 --records 20000 --agents 12 --backlog 600000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import center_home, fork_call, percentile, wait_for_port
from bench.sync import PAYLOAD, _cpu_seconds, _free_port, ed25519_verify_rate


# -- venues ------------------------------------------------------------------------------------

def _make_sites(folder: Path, count: int, records: int, prefix: str) -> list[Path]:
    """Venues with ``records`` signed records each, made in two processes (untimed)."""
    from appliance.site import init_site, open_site

    folders = [folder / f"{prefix}-{i:03d}" for i in range(count)]

    def fill(part: list[Path]) -> None:
        try:
            _fill(part)
        except BaseException:
            import traceback

            traceback.print_exc()
            raise

    def _fill(part: list[Path]) -> None:
        for data in part:
            init_site(data, data.name, f"{data.name} 公共资源交易中心")
            with open_site(data) as site:
                done = 0
                while done < records:
                    n = min(5000, records - done)
                    with site.store.transaction() as conn:
                        site.journal.append_many(conn, [("gate.decision", {**PAYLOAD, "n": done + i}) for i in range(n)])
                    done += n

    pids = [fork_call(fill, folders[k::2]) for k in range(2)]
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if status:
            raise RuntimeError("making the venues failed")
    return folders


def _enroll(center_dir: Path, url: str, folders: list[Path]) -> None:
    from appliance.site import open_site
    from center.core import Center
    from sync.agent import enroll

    c = Center(center_dir)
    try:
        for data in folders:
            with open_site(data) as site:
                enroll(site, url, c.add_site(site.config.site.id))
    finally:
        c.db.close()


def _agents(folders: list[Path], processes: int, out: Path) -> None:
    """Each process syncs its share of the venues round by round until nothing is pending;
    writes its round times and the venues' heads as JSON lines."""

    def run(part: list[Path], path: Path) -> None:
        from appliance.site import open_site
        from sync.agent import Agent

        import random

        from sync.errors import SyncError

        with open(path, "w") as f:
            for data in part:
                with open_site(data) as site:
                    agent = Agent(site)
                    failures = 0
                    for _ in range(1000):  # as the sync worker does: a failed round is tried again after a
                        t0 = time.monotonic()  # backoff with full jitter (2 s × 2^failures, at most 30 s here)
                        try:
                            result = agent.sync_once()
                        except SyncError as exc:
                            f.write(json.dumps({"failed_s": time.monotonic() - t0, "why": str(exc)[:200]}) + "\n")
                            f.flush()
                            failures += 1
                            time.sleep(random.uniform(0, min(30.0, 2.0 * 2 ** failures)))
                            continue
                        failures = 0
                        f.write(json.dumps({"round_s": time.monotonic() - t0}) + "\n")
                        f.flush()
                        if result["pending"] == 0:
                            break
                    head = site.store.reader().execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
                    f.write(json.dumps({"site": site.config.site.id, "size": head[0], "head": head[1]}) + "\n")

    pids = [fork_call(run, folders[k::processes], out / f"agent-{k}.jsonl") for k in range(processes)]
    for pid in pids:
        os.waitpid(pid, 0)


def _read_agents(out: Path) -> tuple[list[float], dict[str, tuple[int, str]], list[str]]:
    rounds, heads, failed = [], {}, []
    for path in out.glob("agent-*.jsonl"):
        for line in path.read_text().splitlines():
            item = json.loads(line)
            if "round_s" in item:
                rounds.append(item["round_s"])
            elif "failed_s" in item:
                failed.append(item["why"])
            else:
                heads[item["site"]] = (item["size"], item["head"])
    return rounds, heads, failed


# -- the center --------------------------------------------------------------------------------

class Served:
    """``python -m center.workers`` with N workers on a loopback port."""

    def __init__(self, center_dir: Path, workers: int) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "center.workers", "--data", str(center_dir), "--port",
                                      str(self.port), "--workers", str(workers)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.proc.stdout.readline()
        wait_for_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return [int(p) for p in f.read().split()]

    def cpu_s(self) -> float:
        return sum(_cpu_seconds(p) for p in self.workers())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)


def _postgres_cpu_s() -> float:
    total = 0.0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":
                    total += _cpu_seconds(int(pid))
            except OSError:
                pass
    return total


def _center_heads(center_dir: Path) -> dict[str, tuple[int, str]]:
    from center.core import Center

    c = Center(center_dir)
    try:
        return {site: (size, head) for site, size, head in c.db.all("SELECT id, size, head FROM sites")}
    finally:
        c.db.close()


def sync_phase(tmp: Path, folders: list[Path], workers: int, agents: int, name: str) -> dict[str, Any]:
    center_dir = center_home(tmp / f"center-{name}", workers=workers)
    served = Served(center_dir, workers)
    try:
        _enroll(center_dir, served.url, folders)
        out = tmp / f"agents-{name}"
        out.mkdir()
        cpu0, pg0, t0 = served.cpu_s(), _postgres_cpu_s(), time.monotonic()
        _agents(folders, agents, out)
        elapsed = time.monotonic() - t0
        cpu, pg = served.cpu_s() - cpu0, _postgres_cpu_s() - pg0
    finally:
        served.stop()
    rounds, site_heads, failed = _read_agents(out)
    center = _center_heads(center_dir)
    records = sum(size for size, _ in center.values())
    return {"seconds": round(elapsed, 1), "records": records, "records_per_s": round(records / elapsed),
            "worker_cpu_s": round(cpu, 1), "postgres_cpu_s": round(pg, 1), "records_per_worker_cpu_s": round(records / cpu),
            "round_p50_s": percentile(rounds, 50), "round_p99_s": percentile(rounds, 99), "rounds": len(rounds),
            "rounds_failed": len(failed), "first_failures": sorted(set(failed))[:3],
            "heads_equal": bool(site_heads) and all(center.get(s) == h for s, h in site_heads.items())
            and len(site_heads) == len(folders)}


# -- tus against PUT through a shaped link ----------------------------------------------------

class Shaper:
    """A userspace link: each direction delayed 15 ms and paced to 100 Mbit/s (12.5 MB/s)."""

    def __init__(self, target_port: int, rate_bps: float = 100e6, one_way_s: float = 0.015) -> None:
        self.target_port, self.rate, self.delay = target_port, rate_bps / 8, one_way_s
        self.port = _free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()
        server.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        next_free = 0.0

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    writer.close()
                    return
                wait = due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        task = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(64 * 1024)
                now = self.loop.time()
                next_free = max(next_free, now) + len(data) / self.rate  # the link's serialisation
                await queue.put((next_free + self.delay, data))
                if not data:
                    break
                if next_free - now > 0.05:  # the link's buffer is full: the sender waits (TCP would)
                    await asyncio.sleep(next_free - now - 0.05)
        finally:
            await task

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    def stop(self) -> None:
        async def close() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(close(), self.loop)


def tus_shaped(tmp: Path, mib: int = 32, rounds: int = 2) -> dict[str, Any]:
    import requests

    from appliance.site import init_site, open_site
    from bench.sync import _fork_server, _put_app, bench_segment
    from center.api import create_center_app
    from center.core import Center
    from sync import media as media_mod
    from sync.agent import Agent, enroll

    data = tmp / "tus-site"
    init_site(data, "bench-tus", "基准测试交易中心")
    center_dir = center_home(tmp / "tus-center")
    c = Center(center_dir)
    token = c.add_site("bench-tus")
    c.db.close()
    port, put_port = _free_port(), _free_port()
    (tmp / "put").mkdir()
    center = _fork_server(lambda: create_center_app(Center(center_dir)), port)
    plain = _fork_server(lambda: _put_app(tmp / "put"), put_port)
    link, put_link = Shaper(port), Shaper(put_port)
    tus_s, put_s = [], []
    try:
        with open_site(data) as site:
            enroll(site, f"http://127.0.0.1:{link.port}", token)
            agent = Agent(site)
            folder = data / "recordings" / "bench-cam"
            folder.mkdir(parents=True, exist_ok=True)
            blob = os.urandom(mib << 20)
            for r in range(rounds):
                path = folder / f"seg-{r}.mp4"
                content = blob + r.to_bytes(4, "big")
                segment = bench_segment(site, path, content)
                digest = segment["sha256"]
                agent.push_journal(int(agent._post("head", {})["size"]))
                t0 = time.perf_counter()
                media_mod.upload_segment(agent, segment)
                tus_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                with open(path, "rb") as f:
                    answer = requests.put(f"http://127.0.0.1:{put_link.port}/put", data=f, timeout=300,
                                          headers={"Content-Length": str(len(content))})
                put_s.append(time.perf_counter() - t0)
                assert answer.status_code == 200
            assert agent.media_held([segment["seq"]]).get(str(segment["seq"])) == digest
    finally:
        link.stop()
        put_link.stop()
        for pid in (center, plain):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    return {"mib": mib, "tus_s": [round(x, 2) for x in tus_s], "put_s": [round(x, 2) for x in put_s],
            "ratio": round(min(put_s) / min(tus_s), 3)}


# -- the run ---------------------------------------------------------------------------------

def run_benchmark(sites: int, records: int, agents: int, backlog: int, scale_sites: int, scale_records: int,
                  media_mib: int) -> dict[str, Any]:
    out: dict[str, Any] = {"benchmark": "center", "sites": sites, "records_per_site": records, "agents": agents,
                           "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-center-") as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)
        verify_before = ed25519_verify_rate()
        t0 = time.monotonic()
        venues = _make_sites(tmp / "venues", sites, records, "venue")
        out["make_venues_s"] = round(time.monotonic() - t0, 1)
        day = sync_phase(tmp, venues, 2, agents, "day")
        out["province_day"] = day
        verify_after = ed25519_verify_rate()
        verify = (verify_before + verify_after) / 2
        out["ed25519_verify_per_s"] = round(verify)
        # The same workload twice (venues made alike), into 1 then 2 workers.
        one = sync_phase(tmp, _make_sites(tmp / "scale-1", scale_sites, scale_records, "scale"), 1, scale_sites, "one")
        two = sync_phase(tmp, _make_sites(tmp / "scale-2", scale_sites, scale_records, "scale"), 2, scale_sites, "two")
        out["scale"] = {"one_worker": one, "two_workers": two}
        big = _make_sites(tmp / "backlog", 1, backlog, "backlog")
        out["backlog"] = sync_phase(tmp, big, 2, 1, "backlog")
        out["tus_shaped"] = tus_shaped(tmp, media_mib)
    out.update({
        "province_day_s": day["seconds"],
        "ingest_per_cpu_s_vs_verify": round(day["records_per_worker_cpu_s"] / verify, 3),
        "workers_2_vs_1": round(two["records_per_s"] / one["records_per_s"], 3),
        "backlog_600k_s": out["backlog"]["seconds"],
        "tus_vs_put_shaped": out["tus_shaped"]["ratio"],
        "round_p99_s": day["round_p99_s"],
        "records_verified": day["records"],
        "heads_equal": day["heads_equal"] and one["heads_equal"] and two["heads_equal"] and out["backlog"]["heads_equal"],
    })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=120)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--agents", type=int, default=12, help="agent processes sharing the venues")
    parser.add_argument("--backlog", type=int, default=600_000)
    parser.add_argument("--scale-sites", type=int, default=8)
    parser.add_argument("--scale-records", type=int, default=20_000)
    parser.add_argument("--media-mib", type=int, default=32)
    args = parser.parse_args()
    print(json.dumps(run_benchmark(args.sites, args.records, args.agents, args.backlog, args.scale_sites,
                                   args.scale_records, args.media_mib)))


if __name__ == "__main__":
    main()
