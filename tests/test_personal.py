"""Personal data: GB 11643 check digits, masking, AES-256-GCM sealing, tokens, log redaction."""

import logging

import pytest
from cryptography.exceptions import InvalidTag

from appliance.personal import (
    PersonalDataCipher,
    RedactingFilter,
    find_id_numbers,
    is_valid_id_number,
    mask_bank_card,
    mask_id_number,
    mask_name,
    redact_personal_data,
)
from tests.helpers import make_id_number


def test_gb11643_example_from_the_standard():
    # The worked example of GB 11643-1999 (a fictitious person born 1949-12-31 in Beijing).
    assert is_valid_id_number("11010519491231002X")
    assert is_valid_id_number("11010519491231002x")
    assert not is_valid_id_number("110105194912310021")  # wrong check character
    assert not is_valid_id_number("11010519491331002X")  # month 13


def test_generated_numbers_validate_and_any_changed_digit_does_not():
    number = make_id_number("220102", "19900307", "123")
    assert is_valid_id_number(number)
    # ISO 7064 MOD 11-2 catches every single-digit substitution.
    for i in range(17):
        for d in "0123456789":
            if d != number[i]:
                assert not is_valid_id_number(number[:i] + d + number[i + 1 :])


def test_masks():
    assert mask_id_number("220102199003071234") == "2201**********1234"
    assert mask_bank_card("6222 0212 3456 7890 123") == "622202*********0123"
    assert mask_name("张三丰") == "张**"


def test_find_and_redact_in_free_text():
    n = make_id_number()
    text = f"专家{n}入场；订单号 12345678901234567890 不是身份证"
    assert find_id_numbers(text) == [n]
    assert redact_personal_data(text) == text.replace(n, mask_id_number(n))


def test_seal_open_and_purpose_binding():
    cipher = PersonalDataCipher(bytes(range(32)))
    sealed = cipher.seal("person.id_number", "11010519491231002X")
    assert b"11010519491231002X" not in sealed
    assert cipher.open("person.id_number", sealed) == b"11010519491231002X"
    with pytest.raises(InvalidTag):
        cipher.open("person.bank_card", sealed)
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(InvalidTag):
        cipher.open("person.id_number", flipped)
    assert cipher.seal("p", "x") != cipher.seal("p", "x")  # fresh nonce each time


def test_tokens_are_stable_keyed_and_purpose_bound():
    a, b = PersonalDataCipher(bytes(32)), PersonalDataCipher(bytes([1]) * 32)
    assert a.token("person.id_number", "x") == a.token("person.id_number", "x")
    assert a.token("person.id_number", "x") != b.token("person.id_number", "x")
    assert a.token("person.id_number", "x") != a.token("person.bank_card", "x")


def test_log_filter_masks_id_numbers_in_messages_and_tracebacks(caplog):
    n = make_id_number()
    logger = logging.getLogger("test.redact")
    redactor = RedactingFilter()
    caplog.handler.addFilter(redactor)
    try:
        logger.error("card read: %s", n)
        try:
            raise ValueError(f"unknown card {n}")
        except ValueError:
            logger.exception("failed")
    finally:
        caplog.handler.removeFilter(redactor)
    assert n not in caplog.text
    assert mask_id_number(n) in caplog.text
