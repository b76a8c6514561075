"""How much of an HTTP/1.1 request has arrived: the framing that lets the web server's event loop
hold a request until it is whole, so that a slow client never holds a thread.

This reads only what framing needs (where the head ends, the target's path, ``Content-Length``,
``Transfer-Encoding``, ``Expect``). Anything it does not understand is handed on at once to
gunicorn's own parser, which answers it as it always has; this is no second HTTP parser.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from urllib.parse import urlsplit

HEAD_LIMIT = 64 * 1024  # gunicorn's own limits (request line, fields) are well within this


class Verdict(enum.Enum):
    MORE = "more"  # keep reading
    WHOLE = "whole"  # the request is here: hand it to a thread
    HAND_ON = "hand on"  # let the application (or gunicorn's parser) answer without the body
    TOO_LARGE = "too large"  # a chunked body grew past the route's limit: answer 413
    UNSUPPORTED = "unsupported"  # a transfer coding other than chunked alone: answer 501


class RequestBuffer:
    """Bytes of one request as they arrive. ``feed`` says what to do next."""

    def __init__(self, body_limit: Callable[[str], int], data: bytes = b"") -> None:
        self._body_limit = body_limit
        self._data = bytearray()
        self._head_end: int | None = None
        self._body_end: int | None = None  # Content-Length framing: where the request ends
        self._chunks: _ChunkScanner | None = None
        self.continue_expected = False  # the client waits for "100 Continue" before its body
        self.received = 0
        self._pending = data

    @property
    def data(self) -> bytes:
        return bytes(self._data)

    def feed(self, data: bytes = b"") -> Verdict:
        data, self._pending = self._pending + data, b""
        self.received += len(data)
        self._data += data
        if self._head_end is None:
            verdict = self._read_head()
            if verdict is not Verdict.MORE or self._head_end is None:
                return verdict
        return self._body_verdict()

    def _read_head(self) -> Verdict:
        end = self._data.find(b"\r\n\r\n")
        if end < 0:
            # Bare line feeds, or a head over every limit: gunicorn's parser says what is wrong.
            bare = self._data.find(b"\n\n") >= 0
            return Verdict.HAND_ON if bare or len(self._data) > HEAD_LIMIT else Verdict.MORE
        self._head_end = end + 4
        return self._frame(bytes(self._data[:end]).decode("latin-1").split("\r\n"))

    def _frame(self, lines: list[str]) -> Verdict:
        request_line, fields = lines[0], [_field(line) for line in lines[1:]]
        parts = request_line.split(" ")
        if len(parts) != 3 or any(name is None for name, _ in fields):
            return Verdict.HAND_ON
        lengths = [value for name, value in fields if name == "content-length"]
        codings = [value for name, value in fields if name == "transfer-encoding"]
        if len(lengths) > 1 or (lengths and codings) or not all(v.isdigit() for v in lengths):
            return Verdict.HAND_ON  # ambiguous framing: gunicorn refuses it
        self._expect(fields)
        limit = self._body_limit(_path(parts[1]))
        if codings:
            if [c.strip().lower() for c in ",".join(codings).split(",")] != ["chunked"]:
                return Verdict.UNSUPPORTED  # gzip and the rest are not implemented
            self._chunks = _ChunkScanner(limit)
            return Verdict.MORE
        length = int(lengths[0]) if lengths else 0
        if length > limit:
            return Verdict.HAND_ON  # the application answers 413, in its order, unread
        assert self._head_end is not None
        self._body_end = self._head_end + length
        return Verdict.MORE

    def _expect(self, fields: list[tuple[str | None, str]]) -> None:
        """The front answers "100 Continue" itself, so the line goes: gunicorn must not send a
        second one after the body is in."""
        expects = [v for name, v in fields if name == "expect"]
        if [v.strip().lower() for v in expects] != ["100-continue"]:
            return
        assert self._head_end is not None
        head = bytes(self._data[: self._head_end]).split(b"\r\n")
        kept = [line for line in head if not line.lower().startswith(b"expect:")]
        rest = self._data[self._head_end :]
        self._data = bytearray(b"\r\n".join(kept)) + rest
        self._head_end = len(self._data) - len(rest)
        self.continue_expected = True

    def _body_verdict(self) -> Verdict:
        assert self._head_end is not None
        if self._chunks is not None:
            return self._chunks.scan(self._data, self._head_end)
        assert self._body_end is not None
        return Verdict.WHOLE if len(self._data) >= self._body_end else Verdict.MORE


class _ChunkScanner:
    """Finds the end of a chunked body without decoding it; the chunks stay as they came."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._at: int | None = None  # where the next chunk's size line starts
        self._size = 0
        self._trailers = False

    def scan(self, data: bytearray, start: int) -> Verdict:
        at = start if self._at is None else self._at
        while True:
            self._at = at
            line_end = data.find(b"\r\n", at)
            if line_end < 0:
                return Verdict.MORE if len(data) - at <= HEAD_LIMIT else Verdict.HAND_ON
            if self._trailers:
                if line_end == at:
                    return Verdict.WHOLE
                at = line_end + 2
                continue
            size = _chunk_size(bytes(data[at:line_end]))
            if size is None:
                return Verdict.HAND_ON
            if size == 0:
                self._trailers, at = True, line_end + 2
                continue
            if self._size + size > self._limit:
                return Verdict.TOO_LARGE
            if len(data) < line_end + 2 + size + 2:
                return Verdict.MORE
            self._size += size
            at = line_end + 2 + size + 2


def _chunk_size(line: bytes) -> int | None:
    digits = line.split(b";", 1)[0].strip()
    if not digits or len(digits) > 16:
        return None
    try:
        return int(digits, 16)
    except ValueError:
        return None


def _field(line: str) -> tuple[str | None, str]:
    name, sep, value = line.partition(":")
    if not sep or not name or " " in name or "\t" in name:
        return None, ""
    return name.lower(), value.strip()


def _path(target: str) -> str:
    if target.startswith(("http://", "https://")):
        return urlsplit(target).path or "/"
    return target.split("?", 1)[0]
