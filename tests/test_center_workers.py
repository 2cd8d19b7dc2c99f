"""The center on every core: `appliance center serve --workers 2` runs a supervisor and two
worker processes on one listening socket, sharing only PostgreSQL and the footage store. Two
agents of one site sending at once (an old image and a new box) never interleave their
batches: every record is held once, in order; a killed worker is started again by itself."""

from __future__ import annotations

import os
import subprocess
import time

import requests

from appliance.site import open_site
from center.core import Center
from sync.agent import enroll
from tests.helpers import APPLIANCE, start_center
from tests.pg import new_center_dir

SITE = "test-county-01"


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_of(proc: subprocess.Popen) -> list[int]:
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_two_agents_of_one_site_through_two_workers_store_every_record_once(data_dir, tmp_path):
    center_dir = new_center_dir(tmp_path / "center")
    c = Center(center_dir)
    token = c.add_site(SITE)
    proc, url = start_center(center_dir, "--workers", "2")
    try:
        assert len(workers_of(proc)) == 2
        cpu_before = {pid: cpu_seconds(pid) for pid in workers_of(proc)}
        with open_site(data_dir) as site:
            enroll(site, url, token)
        for burst in range(3):
            with open_site(data_dir) as site:
                for i in range(2500):  # more than one batch
                    site.journal.record("staff.note", {"text": f"第 {burst} 批 {i}", "author": "staff1"})
            # Three agents of the same site at once, each sending the same backlog in batches.
            agents = [subprocess.Popen([APPLIANCE, "sync", "once", "--data", str(data_dir)],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
            outputs = [a.communicate(timeout=120)[0] for a in agents]
            assert any(a.returncode == 0 for a in agents), outputs
        with open_site(data_dir) as site:  # one more round settles whatever a loser of a race left
            from sync.agent import Agent

            assert Agent(site).sync_once()["pending"] == 0
            local = site.store.reader().execute("SELECT seq, hash FROM journal ORDER BY seq").fetchall()
        held = c.db.all("SELECT seq, hash FROM records WHERE site = %s ORDER BY seq", (SITE,))
        assert [tuple(r) for r in held] == [tuple(r) for r in local]
        assert c.head(SITE)["size"] == len(local)
        # Both workers verified batches (the kernel hands each connection to whichever accepts).
        assert all(cpu_seconds(pid) - cpu_before[pid] > 0.2 for pid in cpu_before), cpu_before
        assert {r[0] for r in c.db.all("SELECT kind FROM alarms")} <= {"site_behind_center"}
    finally:
        proc.terminate()
        proc.wait(10)
        c.db.close()


def test_a_killed_worker_is_started_again_and_the_center_keeps_answering(tmp_path):
    center_dir = new_center_dir(tmp_path / "center")
    proc, url = start_center(center_dir, "--workers", "2")
    try:
        first = workers_of(proc)
        os.kill(first[0], 9)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = workers_of(proc)
            if len(now) == 2 and first[0] not in now:
                break
            time.sleep(0.1)
        assert len(now) == 2 and first[0] not in now and first[1] in now
        answers = {requests.get(f"{url}/center/v1/key", timeout=10).status_code for _ in range(20)}
        assert answers == {200}
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert workers_of_gone(first)


def workers_of_gone(pids: list[int]) -> bool:
    """Stopping the supervisor stops its workers too."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not any(os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().split()[2] for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_a_wrong_setting_or_an_unreachable_database_is_one_clear_line(tmp_path):
    from center.config import write
    from center.pgcluster import free_port
    from tests.helpers import run_appliance

    write(tmp_path / "away", f"postgresql://postgres@127.0.0.1:{free_port()}/center")
    away = run_appliance("center", "serve", "--data", str(tmp_path / "away"))
    assert away.returncode == 2 and "Traceback" not in away.stderr
    assert away.stderr.startswith("error: the center's database cannot be used") and len(away.stderr.strip().splitlines()) == 1
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "center.toml").write_text('database = "postgresql://db/center"\nworkers = "many"\n')
    bad = run_appliance("center", "serve", "--data", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "workers" in bad.stderr and "Traceback" not in bad.stderr
