"""Keep-alive HTTP/1.1 to the apiserver for whole requests: the daemons' writes.

Why not urllib3 for these: against a real apiserver (one thread, 2000 POSTs of an Event),
the client's process spent 455 µs of CPU per request through ``KubeApi`` over urllib3 and
http.client (whose header parsing goes through the ``email`` package), 262 µs through
http.client alone, and 101 µs writing the request and reading the answer on the TLS socket
itself. Every pod bound costs the scheduler three writes (reservation, binding, Event).

The TLS connection is still made by urllib3's pool (``_new_conn`` then ``connect``), so
certificates, hostname checks, SNI and socket options are the client's own; only the
framing is done here: a request with a ``Content-Length``, an answer with a
``Content-Length`` or chunked. A connection is reused while the apiserver keeps it open,
checked for a close before reuse, and dropped after any error. Nothing is retried here: a
write is not idempotent, and the callers know what a lost answer means (``TransientError``).
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from urllib3.util.wait import wait_for_read

_MAX_LINE = 65536
_MAX_HEADERS = 200
_SAFE_TARGET = re.compile(r"[\x21-\x7e]+")
_NO_BODY = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    """Names in lower case."""
    body: bytes

    def read(self) -> bytes:
        """The body, as an unread urllib3 response gives it."""
        return self.body


class AnswerLost(ConnectionError):
    """The connection closed or broke before the whole answer came: the request may or may
    not have been applied."""


class _Connection:
    __slots__ = ("conn", "reader", "socket")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.socket = _DeadlinedSocket(conn.sock)
        self.reader = io.BufferedReader(self.socket)

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.conn.close()


class KeepAlive:
    """Connections to one apiserver, made by ``pool`` (a ``urllib3.HTTPConnectionPool``),
    at most ``max_idle`` of them kept between requests. Thread-safe."""

    def __init__(self, pool: Any, max_idle: int) -> None:
        self._pool = pool
        default_port = 443 if pool.scheme == "https" else 80
        self._host = pool.host if pool.port in (None, default_port) else f"{pool.host}:{pool.port}"
        self._max_idle = max(1, max_idle)
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @staticmethod
    def can_send(target: str) -> bool:
        """Only a target that needs no encoding (printable ASCII, no space) is sent here."""
        return _SAFE_TARGET.fullmatch(target) is not None

    def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None,
    ) -> Answer:
        """Send one request and read its whole answer; raises ``OSError`` (``AnswerLost``,
        a timeout, a TLS or connection error) when it cannot."""
        request = _request_bytes(method, target, self._host, headers, body)
        deadline = None if timeout is None else time.monotonic() + timeout
        connection = self._take(timeout)
        try:
            connection.socket.deadline = deadline
            connection.socket.arm()
            connection.conn.sock.sendall(request)
            answer, reusable = _read_answer(connection.reader, method)
        except BaseException:
            connection.close()
            raise
        if reusable:
            self._give_back(connection)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        """Close the idle connections, and each busy one as its request ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _take(self, timeout: float | None) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                break
            if not wait_for_read(connection.conn.sock, timeout=0.0):
                return connection
            connection.close()  # closed by the apiserver while idle (or it said more)
        conn = self._pool._new_conn()  # the pool's TLS settings, unlike a bare socket
        if timeout is not None:
            conn.timeout = timeout
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        return _Connection(conn)

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()


class _DeadlinedSocket(io.RawIOBase):
    """The connection's socket as the raw stream under its buffered reader, each wait on it
    cut to what is left of the request's ``deadline`` (monotonic; None waits for ever): the
    whole request is bounded, as by urllib3's ``total``, not each read (an answer trickling
    in would never time out). The timeout is set only when the buffer runs dry and the
    socket is really read, once or twice per answer rather than once per header line."""

    def __init__(self, sock: Any) -> None:
        super().__init__()
        self._sock = sock
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def arm(self) -> None:
        if self.deadline is None:
            self._sock.settimeout(None)
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's time is up")
        self._sock.settimeout(left)

    def readinto(self, buffer: Any) -> int:
        self.arm()
        got: int = self._sock.recv_into(buffer)
        return got


def _request_bytes(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        text = str(value)
        if "\r" in text or "\n" in text or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {text}")
    lines.append(f"Content-Length: {len(body) if body else 0}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


def _line(reader: Any) -> bytes:
    line: bytes = reader.readline(_MAX_LINE + 1)
    if not line:
        raise AnswerLost("the apiserver closed the connection before the whole answer")
    if len(line) > _MAX_LINE:
        raise AnswerLost("the apiserver's answer has a line beyond 64 KiB")
    return line


def _read_answer(reader: Any, method: str) -> tuple[Answer, bool]:
    """The answer, and whether the connection can carry another request."""
    while True:
        version, status = _status_line(_line(reader))
        headers = _headers(reader)
        if not 100 <= status < 200:
            break  # an informational answer (none is asked for) precedes the real one
    close = headers.get("connection", "").lower() == "close" or version != b"HTTP/1.1"
    if method == "HEAD" or status in _NO_BODY:
        return Answer(status, headers, b""), not close
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Answer(status, headers, _chunked(reader)), not close
    length = headers.get("content-length")
    if length is None:  # delimited by the close
        return Answer(status, headers, reader.read()), False
    try:
        size = int(length)
    except ValueError:
        raise AnswerLost(f"the apiserver's Content-Length {length!r} is not a number") from None
    body = _exactly(reader, size)
    return Answer(status, headers, body), not close


def _status_line(line: bytes) -> tuple[bytes, int]:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise AnswerLost(f"not an HTTP status line: {line[:80]!r}")
    return parts[0], int(parts[1])


def _headers(reader: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        line = _line(reader)
        if line in (b"\r\n", b"\n"):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raise AnswerLost(f"the apiserver's answer has more than {_MAX_HEADERS} headers")


def _chunked(reader: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_text = _line(reader).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise AnswerLost(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            while _line(reader) not in (b"\r\n", b"\n"):
                pass  # trailers, unused
            return b"".join(chunks)
        chunks.append(_exactly(reader, size))
        if _line(reader) not in (b"\r\n", b"\n"):
            raise AnswerLost("a chunk did not end where its size said")


def _exactly(reader: Any, size: int) -> bytes:
    data: bytes = reader.read(size)
    if len(data) != size:
        raise AnswerLost(f"the answer ended after {len(data)} of {size} bytes")
    return data
