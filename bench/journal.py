"""Journal benchmark: durable single appends, batched appends, verification — each against a
raw SQLite baseline with the same durability (WAL, synchronous=FULL) and row size, measured in
the same run so the ratios survive a noisy machine.

Run: ``appliance bench journal`` (or ``python -m bench.journal``). Prints one JSON object.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.site import init_site, open_site
from appliance.store import connect
from appliance.verify import verify_journal

PAYLOAD = {"text": "专家张** 于 1 号闸机通过人证核验，进入评标区。", "author": "bench", "gate": "G1", "n": 0}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _raw_batched(path: Path, count: int, batch: int, row_bytes: int) -> float:
    conn = connect(path, 10_000)
    conn.execute("CREATE TABLE rawb (seq INTEGER PRIMARY KEY, ts TEXT, kind TEXT, body TEXT, hash TEXT, sig TEXT)")
    body = "x" * row_bytes
    t0 = time.perf_counter()
    for start in range(0, count, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO rawb VALUES (?, ?, ?, ?, ?, ?)",
            [(i, "2026-11-22T00:00:00.000000Z", "staff.note", body, "0" * 64, "A" * 88) for i in range(start + 1, start + batch + 1)],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return count / elapsed


def run_benchmark(*, single: int = 300, batched: int = 20000, batch_size: int = 500, verify_records: int = 20000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp:
        data = Path(tmp) / "site"
        init_site(data, "bench-site", "基准测试交易中心")
        site = open_site(data)
        journal = site.journal

        # Interleave journal and baseline runs in blocks so both see the same machine state.
        journal_lat: list[float] = []
        raw_lat: list[float] = []
        block = max(1, single // 5)
        raw_path = Path(tmp) / "raw.db"
        sample = journal.record("staff.note", PAYLOAD)
        row_bytes = len(json.dumps({"v": 1, "site": "bench-site", "seq": sample.seq, "ts": sample.ts, "kind": sample.kind,
                                    "payload": PAYLOAD, "prev": sample.prev}, ensure_ascii=False).encode())
        done = 0
        raw_done = 0
        while done < single:
            n = min(block, single - done)
            for i in range(n):
                t0 = time.perf_counter()
                journal.record("staff.note", {**PAYLOAD, "n": done + i})
                journal_lat.append(time.perf_counter() - t0)
            done += n
            raw_lat += _raw_block(raw_path, raw_done, n, row_bytes)
            raw_done += n

        # Batched appends: one transaction per batch.
        t0 = time.perf_counter()
        appended = 0
        while appended < batched:
            n = min(batch_size, batched - appended)
            with site.store.transaction() as conn:
                journal.append_many(conn, [("staff.note", {**PAYLOAD, "n": appended + i}) for i in range(n)])
            appended += n
        batched_rate = batched / (time.perf_counter() - t0)
        raw_batched_rate = _raw_batched(Path(tmp) / "rawb.db", batched, batch_size, row_bytes)

        # Verify: top up to verify_records, then check everything from record 1.
        missing = verify_records - journal.count()
        while missing > 0:
            n = min(1000, missing)
            with site.store.transaction() as conn:
                journal.append_many(conn, [("staff.note", PAYLOAD)] * n)
            missing -= n
        journal.checkpoint()
        total = journal.count()
        conn = connect(site.config.database_path, 10_000, readonly=True)
        t0 = time.perf_counter()
        result = verify_journal(conn, site.config.site.id, site.public_key, threads=2)
        verify_s = time.perf_counter() - t0
        conn.close()
        conn = connect(site.config.database_path, 10_000, readonly=True)
        t0 = time.perf_counter()
        result1 = verify_journal(conn, site.config.site.id, site.public_key, threads=1)
        verify1_s = time.perf_counter() - t0
        conn.close()

        # The Ed25519 verify rate of this machine, for context.
        sig = base64.b64decode(journal.records(limit=1)[0].sig)
        msg = b"site-appliance/journal-record/v1\n" + bytes(32)
        t0 = time.perf_counter()
        for _ in range(2000):
            try:
                site.public_key.verify(sig, msg)
            except Exception:
                pass
        ed_verify_rate = 2000 / (time.perf_counter() - t0)
        site.close()

    single_rate = len(journal_lat) / sum(journal_lat)
    raw_rate = len(raw_lat) / sum(raw_lat)
    return {
        "benchmark": "journal",
        "machine": {"cpus": os.cpu_count(), "sqlite": sqlite3.sqlite_version},
        "row_bytes": row_bytes,
        "single": {
            "records": len(journal_lat),
            "rate_per_s": round(single_rate, 1),
            "p50_ms": round(statistics.median(journal_lat) * 1000, 3),
            "p99_ms": round(_percentile(journal_lat, 0.99) * 1000, 3),
        },
        "raw_sqlite_single": {
            "records": len(raw_lat),
            "rate_per_s": round(raw_rate, 1),
            "p50_ms": round(statistics.median(raw_lat) * 1000, 3),
            "p99_ms": round(_percentile(raw_lat, 0.99) * 1000, 3),
        },
        "single_vs_raw_ratio": round(single_rate / raw_rate, 3),
        "batched": {"records": batched, "batch_size": batch_size, "rate_per_s": round(batched_rate, 1)},
        "raw_sqlite_batched_rate_per_s": round(raw_batched_rate, 1),
        "batched_vs_raw_ratio": round(batched_rate / raw_batched_rate, 3),
        "verify": {
            "records": total,
            "ok": result.ok and result1.ok,
            "rate_per_s_2_threads": round(total / verify_s, 1),
            "rate_per_s_1_thread": round(total / verify1_s, 1),
        },
        "ed25519_verify_per_s_1_thread": round(ed_verify_rate, 1),
        "goals": {"single_vs_raw_ratio": 0.8, "batched_rate_per_s": 20000, "verify_rate_per_s": 8000},
    }


def _raw_block(path: Path, start: int, n: int, row_bytes: int) -> list[float]:
    conn = connect(path, 10_000)
    conn.execute("CREATE TABLE IF NOT EXISTS raw (seq INTEGER PRIMARY KEY, ts TEXT, kind TEXT, body TEXT, hash TEXT, sig TEXT)")
    body = "x" * row_bytes
    latencies = []
    for i in range(start + 1, start + n + 1):
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO raw VALUES (?, ?, ?, ?, ?, ?)",
            (i, "2026-11-22T00:00:00.000000Z", "staff.note", body, "0" * 64, "A" * 88),
        )
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
    conn.close()
    return latencies


if __name__ == "__main__":
    print(json.dumps(run_benchmark(), ensure_ascii=False))
