"""The center's settings: ``center.toml`` in its data folder (``appliance center init`` writes
one). Every field is checked when the center starts; a wrong one stops it with its name.

    database = "postgresql://center@db.province.example:5432/center"   # required
    workers = 4                       # API worker processes (default: the CPU count)
    alarm_webhook = "https://ops.province.example/hooks/center"         # optional
    silent_after_hours = 6            # a venue not heard from for this long shows as silent

    [footage]                         # where segments and evidence packages are kept
    backend = "posix"                 # "posix" (a directory: local, CephFS, NFS) or "s3"
    path = "footage"                  # posix: the directory (relative: inside the data folder)
    staging = "uploads"               # tus uploads in progress (shared by all workers)
    # s3 only:
    # bucket = "center-footage"
    # endpoint_url = "https://s3.province.example"   # omitted: AWS
    # region = "cn-north-1"
    # prefix = "footage/"
    # (credentials from the environment or the instance role, as boto3 finds them: never here)

docs/center.md explains each for a real province.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

FILE = "center.toml"


class CenterConfigError(ValueError):
    """A setting that is wrong: the message names it."""


@dataclass(frozen=True)
class FootageConfig:
    backend: str = "posix"
    path: Path = Path("footage")
    staging: Path = Path("uploads")
    bucket: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    prefix: str = ""


@dataclass(frozen=True)
class CenterConfig:
    data: Path
    database: str
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    alarm_webhook: str | None = None
    silent_after_hours: int = 6
    footage: FootageConfig = FootageConfig()


def _text(raw: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise CenterConfigError(f"{where}{key}: required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise CenterConfigError(f"{where}{key}: a non-empty string")
    return value.strip()


def _url(value: str | None, key: str, schemes: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not parsed.hostname:
        raise CenterConfigError(f"{key}: a {' or '.join(s + '://' for s in schemes)} URL with a host")
    return value


def load(data: Path) -> CenterConfig:
    data = data.resolve()
    path = data / FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CenterConfigError(f"{path}: missing (appliance center init --data {data} --database URL writes it)") from None
    except UnicodeDecodeError:
        raise CenterConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise CenterConfigError(f"{path}: not TOML ({exc})") from None
    unknown = set(raw) - {"database", "workers", "alarm_webhook", "silent_after_hours", "footage"}
    if unknown:
        raise CenterConfigError(f"{sorted(unknown)[0]}: not a center setting")
    database = _url(_text(raw, "database", "", required=True), "database", ("postgresql", "postgres"))
    workers = raw.get("workers", os.cpu_count() or 1)
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 256:
        raise CenterConfigError("workers: a whole number from 1 to 256")
    webhook = _url(_text(raw, "alarm_webhook", ""), "alarm_webhook", ("http", "https"))
    silent = raw.get("silent_after_hours", 6)
    if not isinstance(silent, int) or isinstance(silent, bool) or not 1 <= silent <= 720:
        raise CenterConfigError("silent_after_hours: a whole number of hours from 1 to 720")
    fraw = raw.get("footage", {})
    if not isinstance(fraw, dict):
        raise CenterConfigError("footage: a table ([footage])")
    unknown = set(fraw) - {"backend", "path", "staging", "bucket", "endpoint_url", "region", "prefix"}
    if unknown:
        raise CenterConfigError(f"footage.{sorted(unknown)[0]}: not a footage setting")
    backend = _text(fraw, "backend", "footage.") or "posix"
    if backend not in ("posix", "s3"):
        raise CenterConfigError("footage.backend: posix or s3")
    footage = FootageConfig(
        backend=backend,
        path=data / (_text(fraw, "path", "footage.") or "footage"),
        staging=data / (_text(fraw, "staging", "footage.") or "uploads"),
        bucket=_text(fraw, "bucket", "footage.", required=backend == "s3") or "",
        endpoint_url=_url(_text(fraw, "endpoint_url", "footage."), "footage.endpoint_url", ("http", "https")),
        region=_text(fraw, "region", "footage."),
        prefix=_text(fraw, "prefix", "footage.") or "",
    )
    assert database is not None
    return CenterConfig(data=data, database=database, workers=workers, alarm_webhook=webhook, silent_after_hours=silent,
                        footage=footage)


def write(data: Path, database: str, *, workers: int | None = None, footage: dict[str, str] | None = None,
          extra: dict[str, Any] | None = None) -> Path:
    """A new ``center.toml`` (checked by loading it back)."""
    import json

    data.mkdir(parents=True, exist_ok=True)
    lines = [f"database = {json.dumps(database)}"]
    if workers is not None:
        lines.append(f"workers = {int(workers)}")
    lines += [f"{k} = {json.dumps(v)}" for k, v in (extra or {}).items()]
    if footage:
        lines.append("\n[footage]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in footage.items()]
    path = data / FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.chmod(0o600)  # the URL may carry a password
    os.replace(tmp, path)
    load(data)
    return path
