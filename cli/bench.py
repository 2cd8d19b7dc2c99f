"""`appliance bench`: benchmarks (code in bench/), each printing one JSON object."""

from __future__ import annotations

import logging

import click

from cli.common import emit


@click.group()
def bench() -> None:
    """Benchmarks (code in bench/); each prints one JSON object."""


@bench.command("devices")
@click.option("--reads", default=200, show_default=True, help="Card reads per phase.")
@click.option("--opens", default=200, show_default=True, help="Gate opens per phase.")
def bench_devices(reads: int, opens: int) -> None:
    """Card event and gate command latency, idle and with both cores loaded."""
    from bench.devices import run_benchmark

    logging.disable(logging.WARNING)
    emit(run_benchmark(reads=reads, opens=opens))


@bench.command("gate-tap")
@click.option("--taps", default=100, show_default=True, help="Taps per phase.")
def bench_gate_tap(taps: int) -> None:
    """Card tap → gate command, with the decision durably journaled first; idle and loaded."""
    from bench.gate_tap import run_benchmark

    logging.disable(logging.WARNING)
    emit(run_benchmark(taps=taps))


@bench.command("journal")
@click.option("--single", default=300, show_default=True, help="Durable single appends to time.")
@click.option("--batched", default=20000, show_default=True, help="Records appended in batches.")
@click.option("--batch-size", default=500, show_default=True)
@click.option("--verify-records", default=20000, show_default=True)
def bench_journal(single: int, batched: int, batch_size: int, verify_records: int) -> None:
    """Append and verify rates against a raw SQLite baseline measured in the same run."""
    from bench.journal import run_benchmark

    logging.disable(logging.WARNING)
    emit(run_benchmark(single=single, batched=batched, batch_size=batch_size, verify_records=verify_records))
