"""What every command shares: the ``--data`` and ``--config`` options, JSON output, and turning
an expected failure into one line on standard error with exit code 2 (1 is reserved for
"verification failed")."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

DEFAULT_DATA = "/var/lib/site-appliance"

data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="APPLIANCE_DATA",
    default=DEFAULT_DATA,
    show_default=True,
    help="Data directory of the site.",
)
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Configuration file (default: DATA/appliance.toml).",
)


class FiniteFloat(click.FloatRange):
    """A float in a range that is also finite: ``nan`` and ``inf`` are refused with the option
    named (click's FloatRange lets ``nan`` through every bound)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        out = super().convert(value, param, ctx)
        if out != out or out in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return out


def emit(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, separators=(", ", ": ")))


def fail(message: str) -> NoReturn:
    """Unusable input: one line naming what is wrong, exit 2."""
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """The domain's expected errors become `fail`; anything else is a bug and keeps its traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from appliance.accounts import AccountError
        from appliance.config import ConfigError
        from appliance.journal import JournalDamaged
        from appliance.keys import KeyFileError
        from appliance.kiosks import KioskError
        from appliance.personal import PersonalDataError
        from appliance.site import SiteError
        from appliance.store import StoreError

        try:
            return func(*args, **kwargs)
        except (ConfigError, SiteError, KeyFileError, StoreError, PersonalDataError, AccountError, KioskError,
                JournalDamaged) as exc:
            fail(str(exc))

    return wrapper


MAX_INPUT_BYTES = 64 << 20  # a plan, a rule, a bids or booking file: far below this


def read_text_file(path: Path, what: str = "") -> str:
    """A UTF-8 text file given on the command line, or `fail` naming the file and the problem
    (too large, not UTF-8 — e.g. saved as GBK — or unreadable)."""
    name = f"{path}{f' ({what})' if what else ''}"
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            fail(f"{name}: larger than {MAX_INPUT_BYTES >> 20} MiB")
        data = path.read_bytes()
    except OSError as exc:
        fail(f"{name}: cannot be read ({exc.strerror or exc})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{name}: not UTF-8 text (byte {exc.start}); save it as UTF-8 (e.g. iconv -f GBK -t UTF-8)")
    return text.removeprefix("\ufeff")  # a byte-order mark some editors write
