"""After a simulated workload that handles many people's ID numbers, names, photos and bank
cards, no valid resident ID number (GB 11643) appears in clear anywhere in the data directory,
the logs, the journal or the web pages — in UTF-8/ASCII or UTF-16 form."""

import logging
import re
from pathlib import Path

from appliance.logs import setup_logging
from appliance.people import find_person, register_person, reveal_id_number
from appliance.personal import is_valid_id_number
from tests.helpers import make_id_number, run_appliance
from tests.test_runtime import add_user, http_login, output, start, stop, wait_ready

CANDIDATE = re.compile(rb"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")


def luhn_card(prefix: str) -> str:
    """``prefix`` and the Luhn check digit: a well-formed (fictitious) bank card number."""
    from appliance.personal import luhn_valid

    return next(prefix + d for d in "0123456789" if luhn_valid(prefix + d))


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


def people(count: int) -> list[tuple[str, str, str]]:
    out = []
    for i in range(count):
        number = make_id_number(f"2201{i % 90 + 10:02d}", f"19{60 + i % 40}0{1 + i % 9}1{i % 9}", f"{i:03d}")
        out.append((number, f"测试专家{i}", luhn_card(f"622202123456{i:06d}")))
    return out


def scan_bytes(blob: bytes) -> list[str]:
    found = [m.group(0).decode() for m in CANDIDATE.finditer(blob) if is_valid_id_number(m.group(0).decode())]
    # UTF-16LE text (e.g. as a card reader delivers it): drop the zero bytes and look again.
    utf16 = re.sub(rb"([0-9Xx])\x00", rb"\1", blob)
    found += [m.group(0).decode() for m in CANDIDATE.finditer(utf16) if is_valid_id_number(m.group(0).decode())]
    return found


def test_no_id_number_in_clear_anywhere(site, data_dir):
    workload = people(40)
    for number, name, card in workload:
        register_person(site, id_number=number, name=name, photo=b"WLT" + number.encode() * 20, bank_card=card)
    # The secrets are really stored: they can be found by token and read back with the key.
    ref = find_person(site, workload[7][0])
    assert ref is not None and reveal_id_number(site, ref.person_id) == workload[7][0]

    # Staff notes and log lines that mention ID numbers and bank cards, as people type them:
    # plain, in full-width digits, spaced in groups.
    for number, _, card in workload[:10]:
        assert run_appliance("note", "--data", str(data_dir), f"核验 {number} 通过").returncode == 0
        spaced = " ".join(card[i:i + 4] for i in range(0, len(card), 4))
        text = f"专家 {full_width(number)} 的卡号 {spaced}，另记 {card}"
        assert run_appliance("note", "--data", str(data_dir), text).returncode == 0
    setup_logging(site.config)
    try:
        for number, _, card in workload[:10]:
            logging.getLogger("appliance.gate").warning("card %s not on today's roster", number)
            logging.getLogger("appliance.fees").warning("bank card %s refused by the bank", card)
    finally:
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()

    # The running appliance, its pages and its output.
    add_user(data_dir, "staff1", "staff")
    add_user(data_dir, "super1", "supervisor")
    proc, port = start(data_dir)
    try:
        wait_ready(proc, port)
        base = f"http://127.0.0.1:{port}"
        staff, supervisor = http_login(port, "staff1"), http_login(port, "super1")
        pages = "".join(s.get(base + path).text for s, path in (
            (staff, "/console/"), (staff, "/api/v1/status"), (staff, "/api/v1/journal?limit=500"),
            (supervisor, "/review/"), (supervisor, "/review/journal"), (supervisor, "/api/v1/journal?limit=500")))
        assert "person.registered" in pages  # the journal pages really listed the people
    finally:
        stop(proc)
    outputs = output(proc)
    shown = run_appliance("journal", "show", "--data", str(data_dir)).stdout

    secrets = [n for n, _, _ in workload] + [c for _, _, c in workload]
    secret_forms = [s.encode() for s in secrets] + [full_width(s).encode() for s in secrets] + \
        [s.encode("utf-16-le") for s in secrets]

    def known(blob: bytes) -> list[str]:
        return [form.decode("utf-8", "replace") for form in secret_forms if form in blob]

    leaks = {}
    for path in sorted(Path(data_dir).rglob("*")):
        if path.is_file():
            blob = path.read_bytes()
            hits = scan_bytes(blob) + known(blob)
            if hits:
                leaks[str(path.relative_to(data_dir))] = hits
    for label, text in (("web pages", pages), ("process output", outputs), ("journal show", shown)):
        hits = scan_bytes(text.encode("utf-8")) + scan_bytes(text.encode("utf-16-le")) + known(text.encode("utf-8"))
        if hits:
            leaks[label] = hits
    assert leaks == {}
    assert "622202*********" in shown  # the cards were there, masked
    # And the scanner itself does find a number when one is there.
    assert scan_bytes(f"x{workload[0][0]}y".encode("utf-16-le")) == [workload[0][0]]
    assert any(p.name == "appliance.log" for p in Path(data_dir).rglob("*"))
    assert "2201" in (data_dir / "logs" / "appliance.log").read_text()  # masked forms were logged
