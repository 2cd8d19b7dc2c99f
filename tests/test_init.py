"""`appliance init`: database, signing key (0600), separate personal-data key; never overwrites."""

import os
import stat

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.helpers import json_line, run_appliance


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_creates_database_and_private_keys(tmp_path):
    data = tmp_path / "site"
    proc = run_appliance("init", "--data", str(data), "--site-id", "demo-county-01", "--site-name", "演示县公共资源交易中心")
    assert proc.returncode == 0, proc.stderr
    assert json_line(proc.stdout)["ok"] is True
    keys = data / "keys"
    assert mode(keys / "site.key") == 0o600 and mode(keys / "personal.key") == 0o600
    assert mode(keys) == 0o700
    assert isinstance(load_pem_private_key((keys / "site.key").read_bytes(), None), Ed25519PrivateKey)
    assert len((keys / "personal.key").read_bytes()) == 32
    assert (data / "appliance.db").exists()
    show = run_appliance("journal", "show", "--data", str(data))
    first = json_line(show.stdout)
    assert first["seq"] == 1 and first["kind"] == "site.initialised"
    assert first["payload"]["verifier_key"].startswith("demo-county-01+")


def test_init_refuses_to_overwrite_keys(tmp_path):
    data = tmp_path / "site"
    args = ("init", "--data", str(data), "--site-id", "demo-county-01", "--site-name", "演示")
    assert run_appliance(*args).returncode == 0
    before = (data / "keys" / "site.key").read_bytes(), (data / "keys" / "personal.key").read_bytes()
    again = run_appliance(*args)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    assert ((data / "keys" / "site.key").read_bytes(), (data / "keys" / "personal.key").read_bytes()) == before


def test_init_refuses_a_bad_site_id(tmp_path):
    proc = run_appliance("init", "--data", str(tmp_path / "s"), "--site-id", "Not Valid", "--site-name", "x")
    assert proc.returncode == 2 and "site.id" in proc.stderr


def test_open_refuses_a_swapped_signing_key(tmp_path, data_dir):
    import pytest

    from appliance.site import SiteError, open_site

    other = tmp_path / "other"
    from appliance.site import init_site

    init_site(other, "other-site-01", "另一个")
    (data_dir / "keys" / "site.key").write_bytes((other / "keys" / "site.key").read_bytes())
    with pytest.raises(SiteError, match="not the key this site was created with"):
        open_site(data_dir)


def test_note_command_appends_and_masks_id_numbers(data_dir):
    from tests.helpers import make_id_number

    n = make_id_number()
    proc = run_appliance("note", "--data", str(data_dir), f"专家 {n} 到场")
    assert proc.returncode == 0, proc.stderr
    assert json_line(proc.stdout)["seq"] == 2
    shown = run_appliance("journal", "show", "--data", str(data_dir), "--kind", "staff")
    record = json_line(shown.stdout)
    assert record["kind"] == "staff.note" and n not in shown.stdout and n[:4] + "*" * 10 in record["payload"]["text"]
