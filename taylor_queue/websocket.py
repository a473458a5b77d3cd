"""A minimal blocking WebSocket client (RFC 6455) over a plain socket: enough to read ComfyUI's ``/ws`` stream.

Standard library only. Text messages come back as ``str``, binary ones (ComfyUI's previews) as ``bytes``;
pings are answered, fragmented messages reassembled. Only ``ws://`` URLs (ComfyUI over plain HTTP) and
``wss://`` through ``ssl`` are supported; no extensions, no compression.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import struct
import urllib.parse

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class WebSocketClosed(ConnectionError):
    """The server closed the connection."""


class WebSocket:
    """One open connection. ``recv(timeout_s)`` returns the next message or raises ``TimeoutError``."""

    def __init__(self, url: str, connect_timeout_s: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            raise ValueError(f"not a ws:// or wss:// URL: {url}")
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        sock = socket.create_connection((parts.hostname, port), timeout=connect_timeout_s)
        if parts.scheme == "wss":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        self._sock = sock
        self._buffer = b""
        self._parts: list[bytes] = []  # the fragments of a message not yet complete
        self._opcode = _TEXT
        self._handshake(parts, port)

    def _handshake(self, parts: urllib.parse.SplitResult, port: int) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = (f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self._sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise ConnectionError(f"websocket handshake refused: {lines[0]}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        expected = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise ConnectionError("websocket handshake: wrong Sec-WebSocket-Accept")

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise WebSocketClosed("the server closed the websocket")
        self._buffer += chunk

    def _frame(self) -> tuple[bool, int, bytes]:
        """The next whole frame: (fin, opcode, payload). Nothing is consumed until the frame is complete, so a
        timeout in the middle of one loses nothing."""
        while True:
            frame = _parse_frame(self._buffer)
            if frame is not None:
                used, fin, opcode, payload = frame
                self._buffer = self._buffer[used:]
                return fin, opcode, payload
            self._fill()

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        """One control frame (pong, close: payloads under 126 bytes), masked as RFC 6455 5.3 requires."""
        mask = os.urandom(4)
        header = bytes([0x80 | opcode, 0x80 | len(payload)])
        self._sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self, timeout_s: float | None) -> str | bytes:
        """The next data message; ``TimeoutError`` when none arrives within ``timeout_s`` seconds."""
        self._sock.settimeout(timeout_s)
        while True:
            fin, opcode, payload = self._frame()
            if opcode == _PING:
                self._send(_PONG, payload[:125])
            elif opcode == _CLOSE:
                raise WebSocketClosed("the server closed the websocket")
            elif opcode in (_TEXT, _BINARY, _CONT):
                self._opcode = opcode if opcode != _CONT else self._opcode
                self._parts.append(payload)
                if fin:
                    data, self._parts = b"".join(self._parts), []
                    return data.decode() if self._opcode == _TEXT else data

    def close(self) -> None:
        try:
            self._send(_CLOSE, struct.pack("!H", 1000))
        except OSError:
            pass
        self._sock.close()

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _parse_frame(buffer: bytes) -> tuple[int, bool, int, bytes] | None:
    """(bytes used, fin, opcode, unmasked payload) of the frame at the start of ``buffer``; None if incomplete."""
    if len(buffer) < 2:
        return None
    first, second = buffer[0], buffer[1]
    length, offset = second & 0x7F, 2
    if length == 126:
        if len(buffer) < 4:
            return None
        (length,), offset = struct.unpack_from("!H", buffer, 2), 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        (length,), offset = struct.unpack_from("!Q", buffer, 2), 10
    mask = None
    if second & 0x80:
        mask, offset = buffer[offset:offset + 4], offset + 4
    if len(buffer) < offset + length:
        return None
    payload = buffer[offset:offset + length]
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return offset + length, bool(first & 0x80), first & 0x0F, payload
