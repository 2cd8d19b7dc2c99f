"""Locker boards: byte tables with computed checksums, codec properties, and the real client
against both simulated board families on pseudo-terminals."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.locker.client import LockerBoard, LockerError, SerialHub, make_codec
from devices.locker.protocol import EightA, Kerong, LockerProtocolError
from devices.locker.sim import LockerBoardSim


@pytest.mark.parametrize("frame, expected", [
    (Kerong.open(0, 1), "02 00 31 03 36"),    # 02+00+31+03 = 36
    (Kerong.open(0, 16), "02 0F 31 03 45"),   # 36+0F = 45
    (Kerong.open(1, 1), "02 10 31 03 46"),
    (Kerong.query(0), "02 00 30 03 35"),
    (Kerong.open_all(2), "02 20 33 03 58"),   # 02+20+33+03 = 58
    (EightA().open(1, 1), "8A 01 01 11 9B"),  # 8A^01^01^11 = 9B
    (EightA().open_all(1), "8A 01 00 11 9A"),
    (EightA().query(1, 1), "80 01 01 33 B3"),
    (EightA().query(1), "80 01 00 33 B2"),
    (EightA().open(2, 1), "8A 02 01 11 98"),
])
def test_command_frames(frame, expected):
    assert frame == bytes.fromhex(expected)


def test_answers():
    state = Kerong.decode_state(bytes.fromhex("02 00 35 01 00 00 00 03 3B"), 0)  # 02+35+01+03 = 3B
    assert state.feedback[1] is True and not any(state.feedback[n] for n in range(2, 17))
    assert EightA(24).decode_state(bytes.fromhex("80 01 00 00 02 33 B0"), 1).feedback[2] is True  # S1 last
    assert EightA(8).decode_state(bytes.fromhex("80 01 00 00 00 33 B2"), 1).feedback == {n: False for n in range(1, 9)}
    assert EightA().decode_state(bytes.fromhex("80 01 01 11 91"), 1, 1).feedback == {1: True}
    with pytest.raises(LockerProtocolError, match="checksum"):
        Kerong.decode_state(bytes.fromhex("02 00 35 01 00 00 00 03 3C"), 0)


@pytest.mark.parametrize("bad", [lambda: Kerong.open(16, 1), lambda: Kerong.open(0, 17), lambda: EightA().open(0, 1),
                                 lambda: EightA(24).open(1, 25)])
def test_impossible_addresses(bad):
    with pytest.raises(LockerProtocolError):
        bad()


@given(st.binary(max_size=20), st.integers(0, 31))
def test_arbitrary_bytes_only_raise_the_codec_error(data, board):
    for decode in (lambda: Kerong.decode_state(data, board % 16), lambda: EightA().decode_state(data, max(board, 1)),
                   lambda: EightA().decode_state(data, max(board, 1), 1)):
        try:
            decode()
        except LockerProtocolError:
            pass


@given(st.integers(0, 15), st.dictionaries(st.integers(1, 16), st.booleans()), st.dictionaries(st.integers(1, 16), st.booleans()))
def test_kerong_state_round_trip(board, feedback, sensors):
    state = Kerong.decode_state(Kerong.encode_state(board, feedback, sensors), board)
    assert all(state.feedback[n] == v for n, v in feedback.items())
    assert all(state.sensors[n] == v for n, v in sensors.items())


@given(st.integers(1, 31), st.sampled_from([8, 12, 24, 32, 50]), st.data())
def test_eight_a_state_round_trip(board, locks, data):
    codec = EightA(locks)
    feedback = data.draw(st.dictionaries(st.integers(1, locks), st.booleans()))
    state = codec.decode_state(codec.encode_state(board, feedback), board)
    assert all(state.feedback[n] == v for n, v in feedback.items())


# -- the real client against simulated boards ------------------------------------------------

@pytest.fixture(params=[("kerong", 0), ("8a", 1)], ids=["kerong", "8a"])
def bank(request):
    protocol, board = request.param
    sim = LockerBoardSim(protocol, boards=(board,)).start()
    codec = make_codec(protocol)
    hub = SerialHub(sim.url, baudrate=codec.baudrate, timeout=0.3)
    yield sim, LockerBoard(hub, codec, board, settle_s=0.05, left_open_s=0.2), board
    hub.close()
    sim.stop()


def test_open_reads_back_and_door_left_open_is_detected(bank):
    sim, locker, board = bank
    assert locker.status(5).closed
    opened = locker.open(5)
    assert not opened.closed and sim.opened == [(board, 5)]
    assert locker.doors_left_open() == []
    time.sleep(0.25)
    assert locker.doors_left_open() == [5]
    sim.close_door(board, 5)
    assert locker.doors_left_open() == [] and locker.status(5).closed


def test_open_all(bank):
    sim, locker, _ = bank
    states = locker.open_all()
    assert states and all(not s.closed for s in states.values())


def test_jammed_lock_is_an_error(bank):
    sim, locker, _ = bank
    sim.jammed.add(7)
    with pytest.raises(LockerError, match="did not open"):
        locker.open(7)


def test_reversed_feedback_polarity(bank):
    sim, locker, board = bank
    sim.closed_bit = False
    locker.closed_bit = False
    assert locker.status(2).closed
    assert not locker.open(2).closed


def test_absent_board_times_out_clearly(bank):
    sim, locker, board = bank
    other = LockerBoard(locker.hub, locker.codec, board + 3)
    with pytest.raises(LockerError, match="no complete answer"):
        other.status(1)


def test_stray_bytes_before_an_answer(bank):
    sim, locker, _ = bank
    sim.garbage_before_answer = b"\xfa\xfd\x99\x99"
    assert locker.status(1).closed
