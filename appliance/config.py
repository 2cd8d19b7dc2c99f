"""One validated configuration object, loaded from one TOML file plus environment overrides.

Every key is declared here with a description; unknown keys and bad values are rejected with
the key's dotted name and what was expected. ``APPLIANCE_<SECTION>__<KEY>=value`` overrides a
key (the value is read as a TOML value when it parses as one, else as a string), e.g.
``APPLIANCE_WEB__PORT=8081``. docs/configuration.md documents every key; a test keeps it so.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ENV_PREFIX = "APPLIANCE_"
CONFIG_FILE_NAME = "appliance.toml"
SITE_ID_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,62}[a-z0-9]$"


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key and what was expected."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(_Section):
    id: str = Field(
        pattern=SITE_ID_PATTERN,
        description="Site id given by the provincial center: lowercase letters, digits, '.' and "
        "'-'. It is the journal's origin and the signing key's name.",
    )
    name: str = Field(min_length=1, description="The venue's name as shown on screens.")


class PathsConfig(_Section):
    data: Path = Field(description="Data directory (database, journal, logs, recordings).")
    keys: Path | None = Field(
        default=None,
        description="Directory holding the signing key and the personal-data key; default "
        "'<data>/keys'. Keep it off removable media.",
    )

    @property
    def keys_dir(self) -> Path:
        return self.keys if self.keys is not None else self.data / "keys"


class StoreConfig(_Section):
    busy_timeout_ms: int = Field(
        default=10_000,
        ge=100,
        le=120_000,
        description="How long a writer waits for another process's write lock before failing.",
    )


class JournalConfig(_Section):
    checkpoint_interval_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Seconds between signed checkpoints while new records arrive.",
    )
    checkpoint_every: int = Field(
        default=1000,
        ge=1,
        description="Also make a checkpoint as soon as this many records are uncovered.",
    )


class WebConfig(_Section):
    host: str = Field(default="127.0.0.1", description="Address the web server listens on.")
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port of the web server.")
    threads: int = Field(
        default=32,
        ge=4,
        le=200,
        description="Web server worker threads: a request gets one only once it is whole; each open screen's "
        "live-update stream holds one (at most threads − 8 streams in all).",
    )
    header_timeout_s: float = Field(
        default=10.0, ge=1, le=120,
        description="Seconds a connection has to send a request's headers before it is closed (slow clients).")
    body_timeout_s: float = Field(
        default=30.0, ge=1, le=600, description="Seconds a request body may pause before the request is dropped (408).")
    streams_per_client: int = Field(
        default=4, ge=1, le=50,
        description="Live-update streams one login session or one kiosk may hold at once; a new one takes the oldest's slot.")
    streams_per_account: int = Field(
        default=8, ge=1, le=100,
        description="Live-update streams all the sessions of one account may hold together; more are refused (429).")
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate chain; with tls_key, the server speaks HTTPS only."
    )
    tls_key: Path | None = Field(
        default=None, description="PEM private key of tls_cert.", json_schema_extra={"secret": True}
    )
    default_language: Literal["zh_Hans_CN", "en"] = Field(
        default="zh_Hans_CN", description="Language of screens until a user or kiosk picks another."
    )
    idle_timeout_staff_min: int = Field(
        default=15, ge=1, le=720, description="Minutes without activity before a staff or admin session ends."
    )
    idle_timeout_supervisor_min: int = Field(
        default=15, ge=1, le=720, description="Minutes without activity before a supervisor session ends."
    )
    absolute_timeout_h: int = Field(
        default=12, ge=1, le=24, description="Hours after login when any session ends, active or not."
    )
    lockout_failures: int = Field(
        default=5, ge=1, le=100, description="Consecutive failed logins that lock an account."
    )
    lockout_minutes: int = Field(default=15, ge=1, le=1440, description="How long a locked account stays locked.")
    max_failures_per_hour: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Password checks that may fail per account per hour, across lockouts and unlocks.",
    )
    login_concurrency: int = Field(
        default=2, ge=1, le=32,
        description="Password checks (argon2, 64 MiB each) that may run at once; more wait up to 10 s.",
    )
    login_attempts_per_minute: int = Field(
        default=20, ge=1, le=10_000,
        description="Login attempts one network address may make in a minute before it is refused unchecked.",
    )
    kiosk_token_days: int = Field(
        default=30, ge=1, le=365,
        description="Days a kiosk's enrolment lasts without use; each use renews it. A lapsed kiosk needs a new code.",
    )
    secret_key: str | None = Field(
        default=None,
        min_length=32,
        description="Session signing secret. Default: a random secret kept in the keys "
        "directory ('web-secret'), created on first start.",
        json_schema_extra={"secret": True},
    )


    @model_validator(mode="after")
    def _tls_pair(self) -> "WebConfig":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        return self


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level written to the log."
    )
    file: Path | None = Field(
        default=None,
        description="Log file; default '<data>/logs/appliance.log'. Standard error is always "
        "written too (journald collects it under systemd).",
    )


class ServicesConfig(_Section):
    devices: bool = Field(default=True, description="Start the devices worker in 'appliance run'.")
    recorder: bool = Field(default=True, description="Start the recorder worker in 'appliance run'.")
    sync: bool = Field(default=True, description="Start the sync worker in 'appliance run'.")
    heartbeat_s: float = Field(
        default=5.0, gt=0, le=300, description="Seconds between a worker's health heartbeats."
    )
    watchdog_grace: int = Field(
        default=3,
        ge=1,
        le=100,
        description="A worker whose heartbeat is older than this many heartbeat intervals is "
        "reported stale, and systemd's watchdog is no longer fed for it.",
    )


class IdcardReaderConfig(_Section):
    name: str = Field(min_length=1, description="Reader name, e.g. the gate it serves ('gate-1').")
    label: str = Field(default="", max_length=64, description="The name people read on the screens ('1号闸机入口读卡器'); empty: the name.")
    port: str = Field(description="Serial port URL (pyserial): '/dev/ttyUSB0', 'socket://host:port', ...")
    fingerprint: bool = Field(default=False, description="Also read the fingerprint data (needs a fingerprint-capable reader).")
    debounce_s: float = Field(default=3.0, gt=0, le=60, description="A card still on the reader is reported once per this many seconds.")


class GateDeviceConfig(_Section):
    name: str = Field(min_length=1, description="Gate name ('gate-1').")
    label: str = Field(default="", max_length=64, description="The name people read on the screens ('1号闸机'); empty: the name.")
    port: str = Field(description="Serial port URL of the RS-485 bus of the relay module.")
    device_id: int = Field(default=1, ge=1, le=247, description="Modbus device id of the relay module.")
    open_channel: int = Field(default=0, ge=0, le=31, description="Relay (0-based) wired to the gate's open input.")
    pass_input: int = Field(default=0, ge=0, le=31, description="Digital input (0-based) wired to 'passage completed'.")
    alarm_input: int = Field(default=1, ge=0, le=31, description="Digital input (0-based) wired to the gate's alarm output.")
    pulse_ms: int = Field(default=1000, ge=100, le=60_000, description="Length of the open pulse (the module times it).")
    passage_timeout_s: float = Field(default=10.0, gt=0, le=120, description="How long to wait for someone to walk through.")


class LockerBankConfig(_Section):
    name: str = Field(min_length=1, description="Locker bank name ('bank-a').")
    label: str = Field(default="", max_length=64, description="The name people read on the screens ('A组储物柜'); empty: the name.")
    port: str = Field(description="Serial port URL of the lock-control board's bus.")
    protocol: Literal["kerong", "8a"] = Field(description="Board family: 'kerong' (CU, 19200) or '8a' (8A/80, 9600).")
    board: int = Field(ge=0, le=31, description="Board address (Kerong 0–15, 8A/80 1–31).")
    locks: int = Field(default=24, ge=1, le=56, description="Locks on the board (Kerong boards have 16).")
    closed_bit: bool = Field(default=True, description="Feedback level that means 'door closed' (depends on the lock's wiring).")
    left_open_s: float = Field(default=120.0, gt=0, description="A door open longer than this after we opened it raises an alert.")


class SpeakerConfig(_Section):
    name: str = Field(min_length=1, description="Speaker (or amplifier zone output) name, e.g. 'evaluation-ceiling'.")
    label: str = Field(default="", max_length=64, description="The name people read on the screens ('评标区吸顶音箱'); empty: the name.")
    zones: list[str] = Field(min_length=1, description="Zones (day plan zone ids) this speaker covers; a call to a zone plays on every speaker covering it.")
    sink: Literal["file", "alsa", "rtp"] = Field(description="How audio reaches it: an IP speaker over RTP, an ALSA device, or a WAV file (demo).")
    target: str = Field(default="", description="'host:port' for rtp, the ALSA device for alsa, the WAV path for file (default '<data>/broadcast/<name>.wav').")


class BroadcastConfig(_Section):
    sink: Literal["file", "alsa", "rtp"] = Field(default="file", description="Where announcements go.")
    file: Path | None = Field(default=None, description="For sink 'file': the WAV written; default '<data>/broadcast/last.wav'.")
    alsa_device: str = Field(default="default", description="For sink 'alsa': the ALSA device.")
    rtp_targets: list[str] = Field(default_factory=list, description="For sink 'rtp': 'host:port' of each IP speaker.")
    rtp_payload: Literal["pcmu", "pcma"] = Field(default="pcmu", description="G.711 flavour for RTP: µ-law or A-law.")
    clips: Path | None = Field(default=None, description="Directory of pre-recorded WAV clips for fixed phrases.")
    speed_wpm: int = Field(default=150, ge=80, le=400, description="espeak-ng speaking rate.")
    speakers: list[SpeakerConfig] = Field(
        default_factory=list,
        description="Speakers by zone. When empty, every announcement goes to the single sink above, whatever its zone.")


class DevicesConfig(_Section):
    simulate: bool = Field(
        default=False,
        description="Run a simulator for every configured device and drive it through the real drivers "
        "(demo, training, tests). Never on a venue's appliance.",
    )
    idcard: list[IdcardReaderConfig] = Field(default_factory=list, description="ID card readers.")
    gate: list[GateDeviceConfig] = Field(default_factory=list, description="Gates (Modbus relay modules).")
    locker: list[LockerBankConfig] = Field(default_factory=list, description="Locker banks (lock-control boards).")
    broadcast: BroadcastConfig = BroadcastConfig()
    command_expiry_s: float = Field(
        default=60.0, gt=0, description="A queued device command not started within this time expires instead of running late."
    )


class FeeRuleConfig(_Section):
    """Experts' fees (评标专家劳务报酬): amounts in whole yuan, percentages as integers (no floats)."""

    base_hours: int = Field(default=4, ge=0, le=24, description="Hours covered by the base fee.")
    base_fee: int = Field(default=500, ge=0, le=100_000, description="Fee (yuan) for up to base_hours.")
    extra_hour_fee: int = Field(default=100, ge=0, le=100_000, description="Fee (yuan) for each hour beyond base_hours.")
    rounding: Literal["started_hour", "half_hour", "completed_hour"] = Field(
        default="started_hour",
        description="Extra time: a started hour counts as a whole hour; a started half hour as half an hour; or only completed hours.")
    daily_cap: int = Field(default=1500, ge=0, le=1_000_000, description="Most (yuan) one expert is paid for one venue day, all sessions together (0: no cap).")
    holiday_multiplier_pct: int = Field(default=100, ge=100, le=500, description="Fee on a holiday, in percent of the normal fee (150 = half as much again).")
    holidays: list[date] = Field(default_factory=list, description="Venue dates paid as holidays (public holidays; weekends when weekends_are_holidays).")
    weekends_are_holidays: bool = Field(default=False, description="Pay Saturdays and Sundays as holidays.")
    aborted_pct: int = Field(default=50, ge=0, le=100, description="A terminated session: percent of the fee for the time worked.")
    recusal_fee: int = Field(default=100, ge=0, le=100_000, description="An expert who declared a conflict and withdrew: a fixed fee (yuan, travel).")


class SiteOpsConfig(_Section):
    no_show_after_min: int = Field(
        default=15, ge=0, le=240,
        description="Minutes after a session's start when experts not checked in are flagged as no-shows.",
    )
    room_buffer_min: int = Field(
        default=30, ge=0, le=240, description="Room scheduling: free minutes kept between two sessions in one room.")
    room_step_min: int = Field(
        default=15, ge=5, le=60, description="Room scheduling: sessions start on this grid of minutes from the earliest start.")
    opening_columns: list[str] = Field(
        default_factory=lambda: ["工期（日历天）", "项目经理", "质量标准"], max_length=12,
        description="Columns of the opening record table besides the price, as the console offers them (开标记录表).")
    commitment_text: str = Field(
        default="", max_length=5000,
        description="The integrity and recusal commitment (廉洁自律和回避承诺书) experts read and sign at the gate kiosk; "
                    "empty: the built-in text. Its SHA-256 is journaled with each signature.")
    fees: FeeRuleConfig = FeeRuleConfig()


class CameraConfig(_Section):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Camera name ('pb1-overview'); also its folder.")
    label: str = Field(default="", max_length=64, description="The name people read on the screens ('第一评标室全景摄像机'); empty: the name.")
    room: str = Field(min_length=1, description="The day plan's room id the camera films.")
    url: str = Field(description="Main stream: 'rtsp://user:pass@host:554/Streaming/Channels/101' (Hikvision), "
                     "'rtsp://…/cam/realmonitor?channel=1&subtype=0' (Dahua), or a V4L2 device '/dev/video0'.")
    substream_url: str = Field(default="", description="Sub-stream for health checks and live view (Hikvision …/102, Dahua subtype=1); empty: the main stream.")


class RecordingConfig(_Section):
    simulate: bool = Field(default=False, description="Serve a simulated RTSP camera (GStreamer test pattern) for each camera and record it instead of its url (demo, training).")
    cameras: list[CameraConfig] = Field(default_factory=list, description="Cameras, one recorder each.")
    dir: Path | None = Field(default=None, description="Where segments are written; default '<data>/recordings'.")
    segment_s: int = Field(default=60, ge=1, le=3600, description="Segment length in seconds (cut at the next keyframe, aligned to the clock).")
    stall_s: float = Field(default=0, ge=0, le=3600, description="A camera with no new segment for this long is offline: alarm and reconnect. 0: twice the segment length plus 15 s.")
    ambient_days: int = Field(default=30, ge=1, le=3650, description="Footage of no session is kept this many days, then deleted (looping).")
    legal_hold_years: int = Field(default=15, ge=1, le=100, description="Session footage is kept this many years after its end, and deleted only once the center has confirmed it.")
    disk_warn_pct: int = Field(default=80, ge=1, le=99, description="Recordings disk this full (%): alarm.")
    disk_critical_pct: int = Field(default=90, ge=1, le=99, description="Recordings disk this full (%): alarm, and footage of no session is deleted oldest first to make room.")
    session_space_factor: float = Field(default=1.5, ge=1.0, le=10.0, description="A session starts only with this many times its expected footage free on the recordings disk.")
    expected_mbps: float = Field(default=4.0, gt=0, le=1000, description="Bitrate assumed for a camera with no footage yet, Mbit/s (for the free-space check).")
    health_interval_s: float = Field(default=30.0, ge=1, le=3600, description="Camera health: one frame of each camera examined this often (0 cost when no cameras).")
    focus_threshold: float = Field(default=30.0, ge=0, le=10_000, description="Camera health: detail (variance of the Laplacian on a 320 px frame) under which the picture is blurred.")
    frozen_samples: int = Field(default=3, ge=2, le=100, description="Camera health: this many unchanged samples in a row mean a frozen picture.")
    ffmpeg: str = Field(default="ffmpeg", description="The ffmpeg binary.")
    ffprobe: str = Field(default="ffprobe", description="The ffprobe binary.")


class SyncConfig(_Section):
    interval_s: float = Field(default=30.0, ge=1, le=3600, description="Seconds between two rounds of the sync worker with the center.")
    max_backoff_s: float = Field(default=300.0, ge=1, le=3600, description="Longest wait between two attempts while the center cannot be reached (exponential backoff with full jitter up to this).")
    demo_center: bool = Field(default=False, description="Serve a reference center in this process on loopback and enrol with it (demo only; the province runs the real one).")
    demo_province: int = Field(default=0, ge=0, le=120, description="Other venues the demo center simulates on its first start (`appliance center simulate-province`), so its pages show a province: make run sets 11.")


class Config(_Section):
    site: SiteConfig
    paths: PathsConfig
    store: StoreConfig = StoreConfig()
    journal: JournalConfig = JournalConfig()
    web: WebConfig = WebConfig()
    logging: LoggingConfig = LoggingConfig()
    services: ServicesConfig = ServicesConfig()
    devices: DevicesConfig = DevicesConfig()
    siteops: SiteOpsConfig = SiteOpsConfig()
    recording: RecordingConfig = RecordingConfig()
    sync: SyncConfig = SyncConfig()

    @property
    def database_path(self) -> Path:
        return self.paths.data / "appliance.db"

    @property
    def log_file(self) -> Path:
        return self.logging.file if self.logging.file is not None else self.paths.data / "logs" / "appliance.log"


def iter_keys(model: type[BaseModel] = Config, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted key, field info) for every leaf key of the configuration; the fields of a
    list of tables appear as ``section.list[].key``."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        item = getattr(annotation, "__args__", (None,))[0] if getattr(annotation, "__origin__", None) is list else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from iter_keys(annotation, f"{prefix}{name}.")
        elif isinstance(item, type) and issubclass(item, BaseModel):
            yield from iter_keys(item, f"{prefix}{name}[].")
        else:
            yield f"{prefix}{name}", field


def _is_secret(field: Any) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("secret"))


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    known = {key for key, _ in iter_keys()}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        if key not in known:
            raise ConfigError(f"{name}: no configuration key {key!r}")
        *sections, leaf = key.split(".")
        target = raw
        for section in sections:
            target = target.setdefault(section, {})
        target[leaf] = _env_value(value)


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key")
        elif err["type"] == "missing":
            lines.append(f"{key}: required key is missing")
        else:
            lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(lines)


def load_config(
    path: Path | None = None,
    *,
    data_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load and validate. ``path`` defaults to ``<data_dir>/appliance.toml``; ``data_dir``
    fills ``paths.data`` when the file does not set it."""
    environ = os.environ if environ is None else environ
    if path is None:
        if data_dir is None:
            raise ConfigError("give a data directory (--data) or a config file (--config)")
        path = data_dir / CONFIG_FILE_NAME
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file (run 'appliance init' first)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    if data_dir is not None:
        raw.setdefault("paths", {}).setdefault("data", os.path.abspath(data_dir))
    _apply_env(raw, environ)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_format_errors(exc)}") from exc
    return _absolute(config, Path(os.path.abspath(path)).parent)


def _absolute(model: Any, base: Path) -> Any:
    """Every path of the configuration made absolute once, at start-up: a relative one is
    relative to the configuration file's directory (``--data`` to the working directory). No
    later lookup depends on a process's working directory or a web framework's root."""
    update: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Path) and not value.is_absolute():
            update[name] = Path(os.path.abspath(base / value))
        elif isinstance(value, BaseModel):
            if (fixed := _absolute(value, base)) is not value:
                update[name] = fixed
        elif isinstance(value, (list, tuple)) and any(isinstance(v, BaseModel) for v in value):
            items = [_absolute(v, base) if isinstance(v, BaseModel) else v for v in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                update[name] = type(value)(items)
    return model.model_copy(update=update) if update else model


def effective_config(config: Config) -> dict[str, Any]:
    """The configuration as plain data with secrets hidden, for ``appliance config show``."""
    from appliance.credentials import hide_url_passwords

    data = config.model_dump(mode="json")
    for key, field in iter_keys():
        if _is_secret(field):
            section, leaf = key.split(".", 1)
            if data[section][leaf] is not None:
                data[section][leaf] = "***"
    for camera in data["recording"]["cameras"]:  # camera URLs carry their passwords
        camera["url"], camera["substream_url"] = hide_url_passwords(camera["url"]), hide_url_passwords(camera["substream_url"])
    return data


def initial_config_text(site_id: str, site_name: str) -> str:
    """The TOML written by ``appliance init``: the site, everything else at defaults."""
    if not re.match(SITE_ID_PATTERN, site_id):
        raise ConfigError(f"site.id: {site_id!r} must match {SITE_ID_PATTERN}")
    escaped = site_name.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "# Site appliance configuration. Every key: docs/configuration.md\n"
        "[site]\n"
        f'id = "{site_id}"\n'
        f'name = "{escaped}"\n'
    )
