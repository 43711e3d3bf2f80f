"""The keep-alive client's HTTP/1.1 framing, on bytes: no server."""

from __future__ import annotations

import io

import pytest

from kubeio.keepalive import AnswerLost, KeepAlive, _read_answer, _request_bytes


def _answer(raw: bytes, method: str = "POST") -> tuple[int, dict[str, str], bytes, bool]:
    answer, reusable = _read_answer(io.BufferedReader(io.BytesIO(raw)), method)
    return answer.status, dict(answer.headers), answer.body, reusable


def test_a_request_carries_host_headers_and_length() -> None:
    sent = _request_bytes("PATCH", "/apis/x/v1/things/a", "10.0.0.1:6443", {"A": "b"}, b"{}")
    assert sent == (
        b"PATCH /apis/x/v1/things/a HTTP/1.1\r\nHost: 10.0.0.1:6443\r\nA: b\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )
    assert _request_bytes("POST", "/p", "h", {}, None).endswith(b"Content-Length: 0\r\n\r\n")


def test_a_header_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        _request_bytes("POST", "/p", "h", {"Authorization": "Bearer x\r\nX-Evil: 1"}, None)


def test_a_sized_answer_is_read_and_the_connection_kept() -> None:
    raw = (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
        b'{"a":1}'
    )
    assert _answer(raw) == (
        201,
        {"content-type": "application/json", "content-length": "7"},
        b'{"a":1}',
        True,
    )


def test_a_chunked_answer_is_joined_trailers_skipped() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;ext=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    status, _, body, reusable = _answer(raw)
    assert (status, body, reusable) == (200, b'{"a":1}', True)


def test_an_answer_the_server_closes_is_not_kept() -> None:
    closing = (
        b"HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 1\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )
    status, headers, _, reusable = _answer(closing)
    assert (status, headers["retry-after"], reusable) == (429, "1", False)
    unsized = b"HTTP/1.1 200 OK\r\n\r\nto the end"
    assert _answer(unsized)[2:] == (b"to the end", False)


def test_an_informational_answer_is_skipped_and_no_content_has_no_body() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    assert _answer(raw) == (204, {}, b"", True)


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # closed before a word
        b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nshort",  # closed mid-body
        b"HTTP/1.1 201 Created\r\nContent-Len",  # closed mid-headers
        b"SSH-2.0-OpenSSH\r\n\r\n",  # not HTTP
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 201 + b"\r\n",
    ],
)
def test_a_broken_answer_is_a_lost_answer(raw: bytes) -> None:
    with pytest.raises(AnswerLost):
        _answer(raw)


def test_only_a_target_that_needs_no_encoding_is_sent() -> None:
    assert KeepAlive.can_send("/api/v1/namespaces/a-b/pods/c.d/binding")
    assert not KeepAlive.can_send("/api/v1/namespaces/a b/pods")
    assert not KeepAlive.can_send("/api/v1/namespaces/é/pods")
    assert not KeepAlive.can_send("")
