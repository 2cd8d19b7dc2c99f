"""Personal data in free text: what staff, experts and supervisors type is masked where it enters
(ID numbers and bank card numbers, in any digit form), names and identifiers that would carry
one are refused with a clear message, and the journal refuses what slips through."""

from __future__ import annotations

import pytest

from appliance.personal import (
    PersonalDataError,
    luhn_valid,
    personal_numbers,
    redact_personal_data,
)
from tests.helpers import csrf_token, make_id_number
from tests.test_personal_data_scan import full_width, luhn_card

ID = make_id_number()
CARD = luhn_card("622202123456789012")
CHINESE = dict(zip("0123456789", "〇一二三四五六七八九"))


@pytest.mark.parametrize("typed", [
    ID, full_width(ID), " ".join([ID[:6], ID[6:14], ID[14:]]), f"{ID[:6]}－{ID[6:]}", "".join(CHINESE.get(c, c) for c in ID),
    ID.lower(),
])
def test_id_numbers_are_masked_in_any_digit_form(typed):
    assert redact_personal_data(f"专家身份证{typed}已核验") == f"专家身份证{ID[:4]}**********{ID[-4:]}已核验"


@pytest.mark.parametrize("typed", [CARD, full_width(CARD), " ".join(CARD[i:i + 4] for i in range(0, len(CARD), 4)),
                                   "-".join(CARD[i:i + 4] for i in range(0, len(CARD), 4))])
def test_bank_cards_are_masked_in_any_digit_form(typed):
    assert luhn_valid(CARD)
    assert redact_personal_data(f"劳务费打入{typed}。") == f"劳务费打入{CARD[:6]}{'*' * (len(CARD) - 10)}{CARD[-4:]}。"


@pytest.mark.parametrize("typed, masked", [
    ("3782 822463 10005", "378282*****0005"),  # American Express, 4-6-5 as printed
    ("3056 930902 5904", "305693****5904"),  # Diners, 4-6-4
    (f"{CARD[:6]} {CARD[6:]}", f"{CARD[:6]}{'*' * (len(CARD) - 10)}{CARD[-4:]}"),  # the issuer's six, then the rest
    ("  ".join(CARD[i:i + 4] for i in range(0, len(CARD), 4)), f"{CARD[:6]}{'*' * (len(CARD) - 10)}{CARD[-4:]}"),
])
def test_cards_in_the_other_printed_groupings_are_masked(typed, masked):
    assert redact_personal_data(f"卡号{typed}。") == f"卡号{masked}。"


def test_what_is_not_a_card_or_id_is_kept():
    for text in ("电话 13912345678", "标段 JL2026-GC-0117-01", "金额 1234567.89 元", "2026-12-06T08:30:00.000000Z",
                 CARD[:-1] + str((int(CARD[-1]) + 1) % 10), "sha256 " + "ab12" * 16,
                 "项目编号 440300-2026-00104"):  # its 15 digits pass Luhn, but cards are not grouped 6-4-5
        assert redact_personal_data(text) == text, text


def test_the_journal_refuses_a_card_number_in_clear(site):
    with pytest.raises(PersonalDataError):
        site.journal.record("staff.note", {"text": f"卡号 {full_width(CARD)}"})
    with pytest.raises(PersonalDataError):
        site.journal.record("staff.note", {"text": f"身份证 {full_width(ID)}"})
    # Hashes and ids keep their digits: a card-like run glued to letters is not a card.
    site.journal.record("staff.note", {"sha256": "a" + CARD + "f" * (63 - len(CARD))})
    assert personal_numbers("a" + CARD + "f", standalone_cards=True) == []


def test_the_note_command_masks_cards_and_full_width_ids(cli, data_dir, site):
    code, _, _ = cli("note", "--data", str(data_dir), f"退卡 {CARD}，身份证 {full_width(ID)}")
    assert code == 0
    text = site.journal.records(kind="staff.note")[-1].payload["text"]
    assert CARD not in text and full_width(ID) not in text and f"{CARD[:6]}" in text and f"{ID[:4]}***" in text


def test_registers_mask_cards_typed_by_staff(login, web_site):
    staff = login("staff")
    page = staff.get("/console/registers/patrol")
    resp = staff.post("/console/registers/patrol", data={"csrf_token": csrf_token(page), "area": "评标区",
                                                         "finding": f"拾到银行卡 {CARD}"})
    assert resp.status_code in (200, 302)
    payload = web_site.journal.records(kind="register.patrol")[-1].payload
    assert CARD not in str(payload) and CARD[:6] in str(payload)


def test_a_kiosk_name_with_an_id_number_is_refused_clearly(login, web_site, cli, data_dir):
    admin = login("admin")
    page = admin.get("/console/admin/kiosks")
    resp = admin.post("/console/admin/kiosks", data={"csrf_token": csrf_token(page), "name": f"闸机{full_width(ID)}",
                                                     "purpose": "gate", "reader": "", "room": ""})
    assert resp.status_code == 200 and "不得包含身份证号码" in resp.get_data(as_text=True)
    code, out, err = cli("kiosk", "add", f"gate-{ID}", "--data", str(data_dir))
    assert code == 2 and "kiosk name" in err and ID not in err


def test_an_evidence_file_named_with_an_id_number_is_refused_clearly(login, web_site):
    import io

    supervisor = login("supervisor")
    page = supervisor.get("/review/evidence/verify")
    resp = supervisor.post("/review/evidence/verify", data={"csrf_token": csrf_token(page),
                                                     "file": (io.BytesIO(b"PK\x05\x06" + bytes(18)), f"{ID}.zip")},
                           content_type="multipart/form-data")
    assert resp.status_code == 400 and "重命名" in resp.get_data(as_text=True)
    assert web_site.journal.records(kind="review.evidence_verified") == []


def test_an_export_named_with_an_id_number_is_refused(cli, data_dir, tmp_path):
    code, _, err = cli("evidence", "export", "--data", str(data_dir), "--session", "S-1", "--out", str(tmp_path / f"{ID}.zip"))
    assert code == 2 and ID not in err
