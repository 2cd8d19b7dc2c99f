"""The center as a separate process: HTTPS with a CA the site pins at enrolment (another CA is
refused), and the staff pages: sign-in with CSRF, the site in sync with its head and lag,
alarms, the sessions and recordings received, and an inclusion proof checked on request."""

import base64
import datetime
import ipaddress
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance import merkle
from appliance.signednote import verify_note
from sync.agent import PinnedSession
from tests.pg import new_center_dir
from tests.helpers import json_line, run_appliance, start_center


def make_ca(folder, name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def issue_server_cert(folder, ca_key, ca_cert):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return folder / "server.pem", folder / "server.key"


def test_tls_with_a_pinned_ca_and_the_staff_pages(data_dir, tmp_path):
    ca_key, ca_cert, ca_file = make_ca(tmp_path, "province-ca")
    _, _, other_ca = make_ca(tmp_path, "someone-else")
    cert, key = issue_server_cert(tmp_path, ca_key, ca_cert)
    center_dir = new_center_dir(tmp_path / "center")
    token = json_line(run_appliance("center", "site", "add", "test-county-01", "--data", str(center_dir)).stdout)["token"]
    staff = run_appliance("center", "staff", "zhang.wei", "--password", "省中心值班-2026", "--data", str(center_dir))
    assert staff.returncode == 0, staff.stderr
    proc, url = start_center(center_dir, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert url.startswith("https://")
        # A site pinning another CA refuses the center's certificate (and the token stays unused).
        wrong = run_appliance("enroll", "--center", url, "--token", token, "--ca", str(other_ca), "--data", str(data_dir))
        assert wrong.returncode == 1 and "certificate verify failed" in wrong.stderr
        enrolled = run_appliance("enroll", "--center", url, "--token", token, "--ca", str(ca_file), "--data", str(data_dir))
        assert enrolled.returncode == 0, enrolled.stderr
        assert json_line(enrolled.stdout)["ca_pinned"] is True
        once = run_appliance("sync", "once", "--data", str(data_dir))
        assert once.returncode == 0, once.stderr
        result = json_line(once.stdout)
        assert result["pending"] == 0

        web = PinnedSession()  # requests would otherwise take REQUESTS_CA_BUNDLE over verify=
        web.verify = str(ca_file)
        page = web.get(f"{url}/center/ui/", timeout=10)
        assert page.url.startswith(f"{url}/center/ui/login")  # signed-out staff are sent to sign in
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        web.headers["Referer"] = page.url  # as a browser sends it; over HTTPS, CSRF checks it is this origin
        assert web.post(page.url, data={"name": "zhang.wei", "password": "wrong", "csrf_token": csrf}, timeout=10).status_code == 401
        assert web.post(page.url, data={"name": "zhang.wei", "password": "省中心值班-2026"}, timeout=10).status_code == 400  # no CSRF
        signed_in = web.post(page.url, data={"name": "zhang.wei", "password": "省中心值班-2026", "csrf_token": csrf}, timeout=10)
        assert signed_in.status_code == 200 and "站点" in signed_in.text
        rows = web.get(f"{url}/center/ui/?format=json", timeout=10).json()
        assert [(r["id"], r["state"], r["lag"], r["size"]) for r in rows] == [("test-county-01", "in_sync", 0, result["acked"])]
        detail = web.get(f"{url}/center/ui/sites/test-county-01", timeout=10)
        assert detail.status_code == 200 and 'data-state="in_sync"' in detail.text
        # An inclusion proof of record 2, checked here against the receipt the site keeps.
        shown = web.get(f"{url}/center/ui/sites/test-county-01/proof", params={"seq": 2}, timeout=10)
        assert shown.status_code == 200 and 'id="verdict"' in shown.text
        proof = web.get(f"{url}/center/ui/sites/test-county-01/proof", params={"seq": 2, "format": "json"}, timeout=10).json()
        from appliance.site import open_site
        with open_site(data_dir) as site:
            receipt = site.store.get_meta("sync_receipt")
            record_hash = site.store.reader().execute("SELECT hash FROM journal WHERE seq = 2").fetchone()[0]
        text = verify_note(receipt, "test-county-01", site.public_key)
        root = base64.b64decode(text.split("\n")[2])
        assert proof["hash"] == record_hash
        merkle.verify_inclusion(1, int(text.split("\n")[1]), merkle.leaf_hash(bytes.fromhex(record_hash)),
                                [base64.b64decode(p) for p in proof["proof"]], root)
        missing = web.get(f"{url}/center/ui/sites/test-county-01/proof", params={"seq": 10**6}, timeout=10)
        assert missing.status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)
