"""One TOML file → one validated object; clear errors naming the key; env overrides."""

import re
from pathlib import Path

import pytest

from appliance.config import Config, ConfigError, iter_keys, load_config
from tests.helpers import json_line

DOCS = Path(__file__).parent.parent / "docs" / "configuration.md"


def write(tmp_path, text):
    path = tmp_path / "appliance.toml"
    path.write_text('[site]\nid = "demo-county-01"\nname = "演示"\n' + text, encoding="utf-8")
    return path


def test_defaults_fill_everything_but_the_site(tmp_path):
    config = load_config(write(tmp_path, ""), data_dir=tmp_path, environ={})
    assert config.web.port == 8080 and config.paths.keys_dir == tmp_path / "keys"
    assert config.database_path == tmp_path / "appliance.db"


def test_unknown_key_is_rejected_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"web\.prot: unknown key"):
        load_config(write(tmp_path, "[web]\nprot = 80\n"), data_dir=tmp_path, environ={})


def test_unknown_section_is_rejected_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"webb: unknown key"):
        load_config(write(tmp_path, "[webb]\nport = 80\n"), data_dir=tmp_path, environ={})


@pytest.mark.parametrize(
    "snippet, key",
    [
        ("[web]\nport = 70000\n", r"web\.port: .*less than or equal to 65535"),
        ("[web]\nport = \"eighty\"\n", r"web\.port: .*integer"),
        ("[logging]\nlevel = \"LOUD\"\n", r"logging\.level: .*'DEBUG'"),
        ("[journal]\ncheckpoint_interval_s = 0\n", r"journal\.checkpoint_interval_s: .*greater than 0"),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(tmp_path, snippet, key):
    with pytest.raises(ConfigError, match=key):
        load_config(write(tmp_path, snippet), data_dir=tmp_path, environ={})


def test_bad_site_id_and_missing_site(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text('[site]\nid = "Bad Id"\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"site\.id"):
        load_config(path, data_dir=tmp_path, environ={})
    path.write_text("[web]\nport = 8080\n")
    with pytest.raises(ConfigError, match=r"site: required key is missing"):
        load_config(path, data_dir=tmp_path, environ={})


def test_invalid_toml_is_a_clear_error(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("[site\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, environ={})


def test_environment_overrides(tmp_path):
    env = {"APPLIANCE_WEB__PORT": "8181", "APPLIANCE_SITE__NAME": "覆盖名称", "APPLIANCE_SERVICES__SYNC": "false",
           "APPLIANCE_DEVICES__BROADCAST__SINK": "rtp"}
    config = load_config(write(tmp_path, "[web]\nport = 9000\n"), data_dir=tmp_path, environ=env)
    assert config.web.port == 8181 and config.site.name == "覆盖名称" and config.services.sync is False
    assert config.devices.broadcast.sink == "rtp"


def test_device_lists(tmp_path):
    text = ('[[devices.locker]]\nname = "bank-a"\nport = "/dev/ttyUSB2"\nprotocol = "kerong"\nboard = 0\n'
            '[[devices.locker]]\nname = "bank-b"\nport = "/dev/ttyUSB2"\nprotocol = "8a"\nboard = 1\n')
    config = load_config(write(tmp_path, text), data_dir=tmp_path, environ={})
    assert [b.name for b in config.devices.locker] == ["bank-a", "bank-b"]
    with pytest.raises(ConfigError, match=r"devices\.locker\.0\.protocol"):
        load_config(write(tmp_path, text.replace('"kerong"', '"acme"')), data_dir=tmp_path, environ={})


def test_unknown_environment_override_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="APPLIANCE_WEB__PROT"):
        load_config(write(tmp_path, ""), data_dir=tmp_path, environ={"APPLIANCE_WEB__PROT": "1"})


def test_config_show_hides_secrets_and_applies_env(cli, data_dir):
    path = data_dir / "appliance.toml"
    path.write_text(path.read_text() + '\n[web]\nsecret_key = "' + "s" * 40 + '"\n')
    code, out, _ = cli("config", "show", "--data", str(data_dir), env={"APPLIANCE_WEB__PORT": "8123"})
    shown = json_line(out)
    assert code == 0 and shown["web"]["secret_key"] == "***" and shown["web"]["port"] == 8123
    assert "s" * 40 not in out


def test_config_show_reports_bad_config(cli, data_dir):
    path = data_dir / "appliance.toml"
    path.write_text(path.read_text() + "\n[web]\nport = -1\n")
    code, _, err = cli("config", "show", "--data", str(data_dir))
    assert code == 2 and "web.port" in err


def test_every_key_is_documented_and_every_documented_key_exists():
    documented = set(re.findall(r"^\| `([a-z_]+(?:\.[a-z_]+|\[\]\.[a-z_]+)+)` \|", DOCS.read_text(encoding="utf-8"), re.M))
    keys = {key for key, _ in iter_keys(Config)}
    assert keys - documented == set(), "undocumented config keys"
    assert documented - keys == set(), "documented keys that do not exist"
