"""Shared fixtures: an initialised site in a temporary data directory, and ways to run the
real ``appliance`` command (in-process through click, or as a subprocess)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.site import init_site, open_site

from tests.helpers import SITE_ID, SITE_NAME


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    init_site(path, SITE_ID, SITE_NAME)
    return path


@pytest.fixture
def site(data_dir: Path):
    s = open_site(data_dir)
    yield s
    s.close()


@pytest.fixture
def cli():
    """Run an ``appliance`` command in-process; returns (exit code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke
