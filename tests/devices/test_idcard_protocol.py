"""SAM protocol codec: byte tables (checksums computed by hand from the frame rule), decoding of
the four text layouts, and properties that hold for any input."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.idcard import protocol as p
from devices.idcard.sim import fictitious_card
from devices.idcard.text import (
    FOREIGN_2017, FOREIGN_2023, HMT, NATIONS, RESIDENT, CardText, CardTextError, decode_text, encode_text,
    gb11643_check_char,
)


@pytest.mark.parametrize("command, frame", [
    (p.FIND_CARD, "AA AA AA 96 69 00 03 20 01 22"),          # 00^03^20^01 = 22
    (p.SELECT_CARD, "AA AA AA 96 69 00 03 20 02 21"),        # 00^03^20^02 = 21
    (p.READ_BASE, "AA AA AA 96 69 00 03 30 01 32"),          # 00^03^30^01 = 32
    (p.READ_BASE_FINGERPRINT, "AA AA AA 96 69 00 03 30 10 23"),
    (p.READ_APPENDED_ADDRESS, "AA AA AA 96 69 00 03 30 03 30"),
    (p.SAM_ID, "AA AA AA 96 69 00 03 12 FF EE"),             # 00^03^12^FF = EE
    (p.RESET_SAM, "AA AA AA 96 69 00 03 10 FF EC"),
    (p.SAM_STATUS, "AA AA AA 96 69 00 03 11 FF ED"),
])
def test_command_frames(command, frame):
    assert p.encode_command(*command) == bytes.fromhex(frame)


@pytest.mark.parametrize("frame, sw3, data", [
    ("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97", 0x9F, bytes(4)),        # card found
    ("AA AA AA 96 69 00 0C 00 00 90" + " 00" * 8 + " 9C", 0x90, bytes(8)),   # selected
    ("AA AA AA 96 69 00 04 00 00 80 84", 0x80, b""),                         # no card
    ("AA AA AA 96 69 00 04 00 00 41 45", 0x41, b""),                         # read failed
])
def test_response_frames(frame, sw3, data):
    response = p.decode_frame(bytes.fromhex(frame)).as_response
    assert (response.sw1, response.sw2, response.sw3, response.data) == (0, 0, sw3, data)
    assert p.encode_response(sw3, data) == bytes.fromhex(frame)


def test_read_base_frame_layout():
    card = p.CardData(encode_text(fictitious_card()), bytes(range(256)) * 4)
    frame = p.encode_response(0x90, p.encode_card_data(card))
    assert len(frame) == 1295 and frame[5:7] == b"\x05\x08" and frame[10:14] == b"\x01\x00\x04\x00"
    assert p.decode_card_data(p.decode_frame(frame).as_response.data, fingerprint=False) == card
    with_fp = p.encode_response(0x90, p.encode_card_data(p.CardData(card.text, card.photo, bytes(1024))))
    assert with_fp[5:7] == b"\x09\x0a" and len(with_fp) == 2321


def test_every_status_has_a_message_and_unknown_ones_are_named():
    for status in p.Status:
        zh, en = p.status_message(status)
        assert zh and en
    assert "0x7E" in p.status_message(0x7E)[1]


def test_sam_id():
    data = b"".join(v.to_bytes(n, "little") for v, n in ((5, 2), (1, 2), (20101010, 4), (1, 4), (1234567890, 4)))
    assert p.decode_sam_id(data) == "05.01-20101010-0000000001-1234567890"


def test_checksum_error_garbage_and_resync():
    good = p.encode_command(*p.FIND_CARD)
    bad = good[:-1] + b"\x00"
    results = p.FrameReader().feed(b"\x01\x02" + bad + good)
    assert isinstance(results[0], p.FrameError) and "garbage" in str(results[0])
    assert isinstance(results[1], p.FrameError) and "checksum" in str(results[1])
    assert isinstance(results[2], p.Frame) and results[2].as_command[:2] == p.FIND_CARD


# -- text blocks ---------------------------------------------------------------------------------

def test_resident_card_fields_and_long_term():
    card = fictitious_card(5)
    decoded = decode_text(encode_text(card))
    assert decoded == card and decoded.kind == RESIDENT
    assert decoded.nation_name == "汉" and decoded.sex_name == "女" and decoded.long_term and decoded.id_number_checks
    from datetime import date
    assert decoded.valid_on(date(2035, 1, 1)) and not decoded.valid_on(date(2019, 12, 31))


def test_expired_card():
    from datetime import date
    card = fictitious_card(1, valid_to="20250101")
    assert not decode_text(encode_text(card)).valid_on(date(2026, 11, 22))


@pytest.mark.parametrize("card", [
    CardText(kind=FOREIGN_2017, english_name="TESTER, ALICE MARY", name="爱丽丝", sex="2", id_number="USA220180101001",
             country="USA", birth="19800101", valid_from="20200101", valid_to="20300101", card_version="20",
             authority="1500"),
    CardText(kind=FOREIGN_2023, name="测试外籍", sex="1", renewals="00", birth="19750505",
             english_name="SPECIMEN, JOHN LONG ENOUGH NAME TO SPILL OVER", id_number="93" + "0" * 15 + gb11643_check_char("93" + "0" * 15),
             valid_from="20230101", valid_to="20330101", country="CAN"),
    CardText(kind=HMT, name="测试港人", sex="1", birth="19900101", address="广东省深圳市测试路2号",
             id_number="81000019900101001" + gb11643_check_char("81000019900101001"), authority="深圳市公安局",
             valid_from="20220101", valid_to="20270101", pass_number="H12345678", issue_count="01"),
])
def test_other_layouts_round_trip(card):
    block = encode_text(card)
    assert len(block) == 256 and block[248:250].decode("utf-16-le") == {FOREIGN_2017: "I", FOREIGN_2023: "Y", HMT: "J"}[card.kind]
    assert decode_text(block) == card


def test_nation_table_is_gb3304():
    assert len(NATIONS) == 58 and NATIONS["56"] == "基诺" and NATIONS["98"] == "外国血统中国籍人士"


def test_bad_text_blocks():
    with pytest.raises(CardTextError):
        decode_text(b"\x00" * 255)
    block = bytearray(encode_text(fictitious_card()))
    block[248:250] = "Q".encode("utf-16-le")
    with pytest.raises(CardTextError, match="unknown card type"):
        decode_text(bytes(block))


# -- properties ----------------------------------------------------------------------------------

@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_ever_give_frames_or_frame_errors(data):
    for result in p.FrameReader().feed(data):
        assert isinstance(result, (p.Frame, p.FrameError))
    try:
        p.decode_frame(data)
    except p.FrameError:
        pass


frames = st.builds(lambda sw3, data: p.encode_response(sw3, data), st.integers(0, 255), st.binary(max_size=300))


@given(st.lists(frames, min_size=1, max_size=5), st.binary(max_size=20))
def test_byte_by_byte_decodes_like_whole(encoded, garbage):
    stream = garbage + b"".join(encoded)
    whole = [r for r in p.FrameReader().feed(stream) if isinstance(r, p.Frame)]
    reader = p.FrameReader()
    split = []
    for i in range(len(stream)):
        split += [r for r in reader.feed(stream[i : i + 1]) if isinstance(r, p.Frame)]
    assert split == whole
    assert len(whole) >= len(encoded) - (1 if garbage else 0)


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=400))
def test_command_round_trip(cmd, para, data):
    assert p.decode_frame(p.encode_command(cmd, para, data)).as_command == (cmd, para, data)


@given(st.binary(min_size=256, max_size=256))
def test_arbitrary_text_blocks_decode_or_raise_card_text_error(block):
    try:
        decode_text(block)
    except CardTextError:
        pass
