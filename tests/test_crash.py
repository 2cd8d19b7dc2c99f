"""Crash safety: a writer appending records is killed with SIGKILL at random moments, 200 times.
After every restart each record it had acknowledged (its commit had returned) must be present
with the same hash, and the whole journal must verify."""

import os
import random
import select
import signal

import pytest

from appliance.journal import CHECKPOINT_FILE
from appliance.site import open_site
from appliance.verify import verify_journal
from tests.helpers import SITE_ID

CYCLES = 200


def writer(data_dir, ack_fd: int, seed: int) -> None:
    """Child process: append forever, acknowledging each durable commit on the pipe."""
    try:
        site = open_site(data_dir)
        rng = random.Random(seed)
        while True:
            roll = rng.random()
            if roll < 0.6:
                acked = [site.journal.record("staff.note", {"text": "巡场", "n": rng.randrange(10**6)})]
            elif roll < 0.9:
                with site.store.transaction() as conn:
                    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('crash_test_state', ?)", (str(seed),))
                    acked = site.journal.append_many(conn, [("staff.note", {"n": i}) for i in range(rng.randint(2, 8))])
            else:
                site.journal.checkpoint()
                acked = []
            for record in acked:
                os.write(ack_fd, f"{record.seq} {record.hash}\n".encode())
    finally:
        os._exit(1)


def read_acks(fd: int) -> dict[int, str]:
    data = b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    acks = {}
    for line in data.decode().splitlines():
        seq, digest = line.split()
        acks[int(seq)] = digest
    return acks


@pytest.mark.slow
def test_acknowledged_records_survive_kill_9(data_dir):
    rng = random.Random(20261122)
    acknowledged: dict[int, str] = {}
    for cycle in range(CYCLES):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            writer(data_dir, write_fd, seed=cycle)
        os.close(write_fd)
        acks: dict[int, str] = {}
        # Let it run 0–25 ms, collecting acknowledgements, then kill it: every other cycle the
        # time counts from its first acknowledgement (so it dies appending, however slow the
        # machine), the others from its start (so it may die opening the site).
        if cycle % 2:
            select.select([read_fd], [], [], 30)
        deadline_ms = rng.uniform(0, 25)
        select.select([], [], [], deadline_ms / 1000)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        acks.update(read_acks(read_fd))
        os.close(read_fd)
        acknowledged.update(acks)

        # "Restart": open the site as the next process would, then check.
        site = open_site(data_dir)
        try:
            rows = dict(site.store.reader().execute("SELECT seq, hash FROM journal").fetchall())
            lost = {seq for seq, digest in acknowledged.items() if rows.get(seq) != digest}
            assert not lost, f"cycle {cycle}: acknowledged records lost or changed: {sorted(lost)[:5]}"
            note_path = data_dir / CHECKPOINT_FILE
            note = note_path.read_text() if note_path.exists() else None
            result = verify_journal(site.store.reader(), SITE_ID, site.public_key, latest_note=note)
            assert result.ok, f"cycle {cycle}: {result.as_json()}"
        finally:
            site.close()
    assert len(acknowledged) >= CYCLES // 2  # the test really exercised appends, not just start-up
    print(f"{len(acknowledged)} acknowledged records survived {CYCLES} kills")
