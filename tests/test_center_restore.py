"""Backup and restore as docs/center.md tells it: a logical dump of the center's database
(pg_dump -Fc) and its data folder's secrets, restored into a new database. The restored center
has the same heads and proofs, its own log still verifies, and a venue's next round continues
from the restored head — records the center received after the dump are sent again, no fork."""

from __future__ import annotations

import shutil
import subprocess

from center import log as center_log
from center.config import write
from center.core import Center
from center.pgcluster import pg_bin
from sync.agent import Agent, enroll
from tests.pg import cluster, database_url, new_center_dir
from tests.test_sync import center, notes  # noqa: F401


def test_a_center_restored_from_its_dump_goes_on_with_its_venues(site, tmp_path):
    old_dir = new_center_dir(tmp_path / "center")
    c = Center(old_dir)
    from center.api import center_server
    from tests.helpers import free_port

    port = free_port()
    server = center_server(c, "127.0.0.1", port, threads=4)
    server.start()
    url = f"http://127.0.0.1:{port}"
    enroll(site, url, c.add_site(site.config.site.id))
    notes(site, 40)
    Agent(site).sync_once()
    with c.db.transaction() as conn:
        center_log.append(conn, c.key, c.clock, "zhang.wei", "feed.published", {"kind": "configuration", "sites": []})
    before = c.head(site.config.site.id)
    dump = tmp_path / "center.dump"
    subprocess.run([pg_bin("pg_dump"), "-Fc", "-f", str(dump), database_url(old_dir)], check=True, timeout=120)
    # The center goes on after the dump: these records are lost with it.
    notes(site, 15)
    Agent(site).sync_once()
    assert c.head(site.config.site.id)["size"] > before["size"]
    server.stop()
    c.db.close()

    # The restore: a new database, the dump, the data folder's secrets, center.toml pointed at it.
    new_url = cluster().create_database("restored_" + tmp_path.name[-12:].replace("-", "_").lower())
    subprocess.run([pg_bin("pg_restore"), "--no-owner", "-d", new_url, str(dump)], check=True, timeout=120)
    new_dir = tmp_path / "restored"
    new_dir.mkdir()
    for name in ("center.key", "ui-secret"):
        shutil.copy2(old_dir / name, new_dir / name)
    write(new_dir, new_url)
    restored = Center(new_dir)
    try:
        assert restored.head(site.config.site.id) == before
        assert restored.prove(site.config.site.id, 7)["seq"] == 7
        rows = restored.db.all("SELECT seq, body, hash, sig FROM center_log ORDER BY seq")
        assert center_log.verify(rows, restored.key.public_key())["ok"] and len(rows) == 1
        # The venue's next round, at the same address: the center is behind what it acknowledged
        # before; the venue sends the rest and the journal goes on, one chain.
        server = center_server(restored, "127.0.0.1", port, threads=4)
        server.start()
        try:
            result = Agent(site).sync_once()
        finally:
            server.stop()
        assert result["pending"] == 0
        local = site.store.reader().execute("SELECT seq, hash FROM journal ORDER BY seq").fetchall()
        held = restored.db.all("SELECT seq, hash FROM records WHERE site = %s ORDER BY seq", (site.config.site.id,))
        assert [tuple(r) for r in held] == [tuple(r) for r in local]
    finally:
        restored.db.close()
