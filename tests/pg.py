"""The tests' PostgreSQL: one private cluster for the whole run (started on first use, in a
folder of its own, stopped when the run ends), and a fresh database per center."""

from __future__ import annotations

import atexit
import tempfile
import uuid
from pathlib import Path

from center.config import write
from center.pgcluster import PrivateCluster

_cluster: PrivateCluster | None = None


def cluster() -> PrivateCluster:
    global _cluster
    if _cluster is None:
        folder = Path(tempfile.mkdtemp(prefix="center-tests-pg-"))
        folder.chmod(0o755)  # PostgreSQL runs as 'nobody' under root and must reach its folder
        started = PrivateCluster(folder / "pg", durable=False, max_connections=400)
        started.start()
        atexit.register(started.stop, "immediate")
        _cluster = started
    return _cluster


def new_center_dir(folder: Path, *, workers: int | None = None, footage: dict[str, str] | None = None) -> Path:
    """A center data folder whose center.toml names a new, empty database."""
    url = cluster().create_database(f"center_{uuid.uuid4().hex[:12]}")
    write(folder, url, workers=workers, footage=footage)
    return folder


def database_url(folder: Path) -> str:
    from center.config import load

    return load(folder).database
