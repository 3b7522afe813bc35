"""The sans-I/O telnet parser, byte by byte, and fuzzed."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from aiomonitor._protocol.telnet import (
    _MEANINGLESS,
    MAX_LINE_BYTES,
    EndOfInput,
    Event,
    Interrupt,
    Line,
    LineTooLong,
    TelnetParser,
    TerminalType,
    WindowSize,
    encode_output,
)

IAC, DO, DONT, WILL, WONT, SB, SE = 255, 253, 254, 251, 252, 250, 240


def feed_all(data: bytes, parser: TelnetParser | None = None) -> list[Event]:
    return (parser or TelnetParser()).feed(data)


def test_line_endings_of_telnet_and_nc() -> None:
    assert feed_all(b"ps\r\nhelp\nwhere 1\r\x00x") == [Line("ps"), Line("help"), Line("where 1")]


def test_a_line_split_across_packets_and_cr_lf_split_between_them() -> None:
    parser = TelnetParser()
    assert parser.feed(b"he") == []
    assert parser.feed(b"lp\r") == [Line("help")]
    assert parser.feed(b"\nps\r\n") == [Line("ps")]


def test_end_of_stream_flushes_a_partial_line_and_closes() -> None:
    parser = TelnetParser()
    assert parser.feed(b"ps") == []
    assert parser.feed(b"") == [Line("ps"), EndOfInput()]
    assert parser.closed
    assert parser.feed(b"more\n") == []


def test_ctrl_d_is_end_of_input_without_closing() -> None:
    parser = TelnetParser()
    assert parser.feed(b"\x04") == [EndOfInput()]
    assert not parser.closed
    assert parser.feed(b"ab\x04c\n") == [Line("abc")]  # mid-line it means nothing


def test_interrupts_discard_the_line() -> None:
    assert feed_all(b"half\x03ps\n") == [Interrupt(), Line("ps")]
    assert feed_all(bytes([ord("x"), IAC, 244]) + b"y\n") == [Interrupt(), Line("y")]


def test_negotiation_is_refused_once_and_timing_mark_always_answered() -> None:
    parser = TelnetParser()
    parser.feed(bytes([IAC, DO, 1, IAC, DO, 1, IAC, WILL, 32, IAC, DO, 6, IAC, DO, 6, IAC, DONT, 3]))
    assert parser.take_replies() == bytes([IAC, WONT, 1, IAC, DONT, 32, IAC, WILL, 6, IAC, WILL, 6])
    assert parser.take_replies() == b""


def test_naws_is_accepted_and_reported() -> None:
    parser = TelnetParser()
    events = parser.feed(bytes([IAC, WILL, 31, IAC, SB, 31]) + struct.pack(">HH", 132, 43) + bytes([IAC, SE]))
    assert events == [WindowSize(132, 43)]
    assert parser.take_replies() == bytes([IAC, DO, 31])


def test_terminal_type_is_asked_for_once_and_reported() -> None:
    parser = TelnetParser()
    assert parser.feed(bytes([IAC, WILL, 24])) == []
    assert parser.take_replies() == bytes([IAC, DO, 24, IAC, SB, 24, 1, IAC, SE])  # DO, then SEND
    parser.feed(bytes([IAC, WILL, 24]))
    assert parser.take_replies() == b""  # a repeated offer is not a new conversation
    events = parser.feed(bytes([IAC, SB, 24, 0]) + b"xterm-256color" + bytes([IAC, SE]) + b"ps\n")
    assert events == [TerminalType("xterm-256color"), Line("ps")]


def test_escaped_iac_is_data_and_unknown_subnegotiations_are_dropped() -> None:
    data = bytes([IAC, SB, 99]) + b"x" * 500 + bytes([IAC, SE]) + b"a" + bytes([IAC, IAC]) + b"\n"
    assert feed_all(data) == [Line("a\ufffd")]


def test_terminal_escape_sequences_are_dropped() -> None:
    assert feed_all(b"p\x1b[A\x1b[1;5Cs\n") == [Line("ps")]


def test_a_cut_off_escape_sequence_does_not_eat_the_line_end() -> None:
    # Found by the live fuzz test: "ESC [" then CR LF must still end the line.
    assert feed_all(b"\x1b[\r\nps\n\x1b\nq\n") == [Line(""), Line("ps"), Line(""), Line("q")]


def test_overlong_lines_are_reported_once_then_parsing_resumes() -> None:
    parser = TelnetParser(max_line=10)
    assert parser.feed(b"x" * 8) == []
    assert parser.feed(b"y" * 8) == []
    assert parser.feed(b"zz\nok\n") == [LineTooLong(10), Line("ok")]


def test_output_uses_network_line_endings() -> None:
    assert encode_output("a\nb\r\nc") == b"a\r\nb\r\nc"


@given(st.lists(st.sampled_from(["\r", "\n", "\r\n", "a", "é", "\ud800"]) | st.characters()).map("".join))
def test_every_line_end_goes_out_as_cr_lf(text: str) -> None:
    """CR LF stays as it is, a bare LF becomes CR LF, anything else is UTF-8."""
    out = encode_output(text)
    assert out == text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", errors="replace")
    assert out.count(b"\n") == out.count(b"\r\n")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000), st.lists(st.integers(min_value=1, max_value=50), max_size=40))
def test_fuzz_any_bytes_in_any_chunking(data: bytes, cuts: list[int]) -> None:
    whole = TelnetParser(max_line=256)
    expected = whole.feed(data) + whole.feed(b"")
    chunked = TelnetParser(max_line=256)
    events: list[Event] = []
    position = 0
    for cut in cuts:
        events += chunked.feed(data[position : position + cut])
        position += cut
    events += chunked.feed(data[position:]) + chunked.feed(b"")
    assert events == expected  # chunking never changes the meaning
    assert whole.take_replies() == chunked.take_replies()
    for event in events:
        if isinstance(event, Line):
            assert "\r" not in event.text and "\n" not in event.text
            assert len(event.text.encode("utf-8", "surrogatepass")) <= 256 * 3
    assert events[-1] == EndOfInput()


def test_the_default_limit_is_64_kib() -> None:
    assert MAX_LINE_BYTES == 65536


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="ab \t\n\x03\x04\x7f", max_size=200),  # (no CR: what follows a CR has a meaning)
    # (NUL excepted: after a CR it has a meaning of its own, CR NUL = a bare CR)
    st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(_MEANINGLESS[1:])), max_size=50),
)
def test_meaningless_control_bytes_change_nothing_anywhere(typed: str, noise: list[tuple[int, int]]) -> None:
    clean = typed.encode() + b"\n"  # (never empty: feeding b"" means the end of the stream)
    noisy = bytearray(clean)
    for position, byte in noise:  # (dropped in bulk by the parser: a flood of them costs no Python per byte)
        noisy.insert(position % (len(noisy) + 1), byte)
    assert TelnetParser().feed(bytes(noisy)) == TelnetParser().feed(clean)
