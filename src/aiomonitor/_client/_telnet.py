"""The client side's telnet: connecting to a monitor, and the few telnet
sequences a line-mode client sends and strips.

Shared by the interactive client (``_client``) and the one-command exchange
(``_oneshot``), which the interactive client's completion also uses.
Imports nothing of the monitor (``tests/test_layers.py``).
"""

from __future__ import annotations

import codecs
import socket
import struct

from .._registry import Address

IAC, SB, SE, WILL, DO, IP = 255, 250, 240, 251, 253, 244
NAWS, TTYPE = 31, 24
TTYPE_IS, TTYPE_SEND = 0, 1
#: A subnegotiation longer than this is not one we asked for: dropped.
_MAX_SUBNEGOTIATION = 1024


def connect(address: Address, timeout: float = 5.0) -> socket.socket:
    """A blocking socket connected to *address* (TCP or unix)."""
    if address.path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(address.path)
        except BaseException:
            sock.close()
            raise
    else:
        assert address.port is not None
        sock = socket.create_connection((address.connectable_host(), address.port), timeout=timeout)
    sock.settimeout(None)
    return sock


def naws(columns: int, rows: int) -> bytes:
    return bytes([IAC, WILL, NAWS, IAC, SB, NAWS]) + struct.pack(">HH", columns, rows) + bytes([IAC, SE])


def terminal_type_offer() -> bytes:
    return bytes([IAC, WILL, TTYPE])


def terminal_type_reply(name: str) -> bytes:
    return bytes([IAC, SB, TTYPE, TTYPE_IS]) + name.encode("ascii", errors="replace") + bytes([IAC, SE])


def split_telnet(data: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """The server's bytes as (text, an unfinished telnet sequence to prepend to
    the next chunk, payloads of the subnegotiations it sent).

    Option replies (IAC DO NAWS, WILL TIMING-MARK) are dropped.  Our text is
    UTF-8, which never contains the byte IAC, so every IAC starts a sequence.
    """
    out = bytearray()
    subnegotiations: list[bytes] = []
    index, size = 0, len(data)
    while index < size:
        found = data.find(IAC, index)
        if found < 0:
            out += data[index:]
            break
        out += data[index:found]
        index = found
        if index + 1 >= size:
            return bytes(out), data[index:], subnegotiations
        verb = data[index + 1]
        if verb == SB:
            end = data.find(bytes([IAC, SE]), index + 2)
            if end < 0:
                unfinished = data[index:] if size - index <= _MAX_SUBNEGOTIATION else b""
                return bytes(out), unfinished, subnegotiations
            subnegotiations.append(data[index + 2 : end])
            index = end + 2
        elif 251 <= verb <= 254:
            if index + 2 >= size:
                return bytes(out), data[index:], subnegotiations
            index += 3
        else:
            index += 2
    return bytes(out), b"", subnegotiations


class TelnetText:
    """The server's bytes as the text a person reads, across reads: telnet
    sequences removed, UTF-8 decoded incrementally (a ``└─`` split between
    two reads stays whole), CR LF as newlines (also split between reads).

    The one reader of the client side: the interactive session and the
    one-command exchange (``_oneshot``) both feed it what ``recv`` gives.
    """

    def __init__(self) -> None:
        self._unfinished = b""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held_cr = False

    def feed(self, data: bytes) -> tuple[str, list[bytes]]:
        """The text *data* completes, and the payloads of the subnegotiations it holds."""
        raw, self._unfinished, subnegotiations = split_telnet(self._unfinished + data)
        return self._newlines(self._decoder.decode(raw)), subnegotiations

    def close(self) -> str:
        """What is left once the server has closed the connection."""
        return self._newlines(self._decoder.decode(b"", final=True), final=True)

    def _newlines(self, text: str, final: bool = False) -> str:
        if self._held_cr:
            text = "\r" + text
            self._held_cr = False
        if text.endswith("\r") and not final:  # its LF may come with the next read
            text = text[:-1]
            self._held_cr = True
        return text.replace("\r\n", "\n")
