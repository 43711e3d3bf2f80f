"""Requests sent straight to the client's connection pool carry what the client would send:
the server's path prefix, the encoded query, the bearer token, the JSON body."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from kubeio.errors import Unreachable
from kubeio.rest import KubeApi, _Direct
from localcluster.process import free_port


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        _Recorder.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        payload = json.dumps({"kind": "Status", "ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Recorder.seen.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _configuration(host: str) -> client.Configuration:
    configuration = client.Configuration()
    configuration.host = host
    configuration.api_key = {"authorization": "token-1"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return configuration


def test_a_direct_request_carries_prefix_query_token_and_body(server: str) -> None:
    api = KubeApi(_configuration(f"{server}/k8s/clusters/c-1"), user_agent="vaclab-test")
    assert _Direct.of(api.api_client) is not None
    api.get("/api/v1/pods", {"labelSelector": "app in (a,b)", "limit": 5, "watch": False})
    api.patch(
        "/api/v1/namespaces/n/pods/p",
        [{"op": "test", "path": "/x", "value": "é"}],
        content_type="application/json-patch+json",
    )
    got, patched = _Recorder.seen
    assert got["method"] == "GET"
    assert (
        got["path"]
        == "/k8s/clusters/c-1/api/v1/pods?labelSelector=app%20in%20%28a%2Cb%29&limit=5&watch=false"
    )
    assert got["headers"]["authorization"] == "Bearer token-1"
    assert got["headers"]["user-agent"] == "vaclab-test"
    assert patched["headers"]["content-type"] == "application/json-patch+json"
    assert json.loads(patched["body"]) == [{"op": "test", "path": "/x", "value": "é"}]
    api.close()


def test_a_rotated_token_is_read_on_every_request(server: str) -> None:
    configuration = _configuration(server)
    tokens = iter(["token-2", "token-3"])

    def refresh(config: client.Configuration) -> None:
        config.api_key["authorization"] = next(tokens)

    configuration.refresh_api_key_hook = refresh  # type: ignore[assignment]
    api = KubeApi(configuration)
    api.get("/api/v1/nodes")
    api.get("/api/v1/nodes")
    assert [r["headers"]["authorization"] for r in _Recorder.seen] == [
        "Bearer token-2",
        "Bearer token-3",
    ]
    api.close()


def test_through_a_proxy_the_client_sends_it_its_own_way() -> None:
    configuration = _configuration("https://10.0.0.1:6443")
    configuration.proxy = "http://127.0.0.1:3128"
    api = KubeApi(configuration)
    assert _Direct.of(api.api_client) is None
    api.close()


class _KeepAliveRecorder(_Recorder):
    protocol_version = "HTTP/1.1"
    timeout = 0.2  # an idle connection is closed after this long
    peers: list[tuple[str, int]] = []

    def _answer(self) -> None:
        _KeepAliveRecorder.peers.append(self.client_address)
        super()._answer()

    do_GET = do_POST = do_PATCH = _answer


def test_writes_reuse_one_connection_and_a_connection_closed_while_idle_is_replaced() -> None:
    _Recorder.seen.clear()
    _KeepAliveRecorder.peers.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveRecorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    api = KubeApi(_configuration(f"http://127.0.0.1:{httpd.server_address[1]}"))
    try:
        for name in ("a", "b", "c"):
            assert api.create("/api/v1/namespaces/n/events", {"name": name}) == {
                "kind": "Status",
                "ok": True,
            }
        api.patch("/api/v1/namespaces/n/pods/p", {"metadata": {}})
        assert len(set(_KeepAliveRecorder.peers)) == 1  # one connection for all four
        assert [json.loads(r["body"]) for r in _Recorder.seen[:3]] == [
            {"name": "a"},
            {"name": "b"},
            {"name": "c"},
        ]
        assert _Recorder.seen[0]["headers"]["authorization"] == "Bearer token-1"

        time.sleep(3 * _KeepAliveRecorder.timeout)  # the server closes the idle connection
        api.create("/api/v1/namespaces/n/events", {"name": "d"})
        assert json.loads(_Recorder.seen[-1]["body"]) == {"name": "d"}
        assert len(set(_KeepAliveRecorder.peers)) == 2  # a new one, and no error
    finally:
        api.close()
        httpd.shutdown()
        httpd.server_close()


def test_a_write_to_an_apiserver_that_is_away_is_unreachable_not_a_crash() -> None:
    api = KubeApi(_configuration(f"https://127.0.0.1:{free_port()}"))
    try:
        for write in (
            lambda: api.create("/api/v1/namespaces/n/events", {}),
            lambda: api.patch("/api/v1/namespaces/n/pods/p", {}),
        ):
            with pytest.raises(Unreachable, match="Connection refused"):
                write()
    finally:
        api.close()


@pytest.mark.parametrize(
    ("head", "trickled"),
    [
        # A sized body, a byte at a time.
        (b"HTTP/1.1 201 Created\r\nContent-Length: 40\r\n\r\n", b"x" * 40),
        # The header lines themselves (a slow proxy in front of the apiserver).
        (b"HTTP/1.1 201 Created\r\n", b"X-Slow: " + b"y" * 40 + b"\r\n\r\n"),
        # A chunked body.
        (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", b"28\r\n" + b"z" * 40),
        # A body delimited by the close, which never comes.
        (b"HTTP/1.0 201 Created\r\n\r\n", b"w" * 40),
    ],
    ids=["sized-body", "headers", "chunked-body", "close-delimited-body"],
)
def test_an_answer_that_trickles_in_times_out_as_a_whole(head: bytes, trickled: bytes) -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(head)
            with contextlib.suppress(OSError):
                for byte in trickled:
                    time.sleep(0.1)  # each byte well within any single read's timeout
                    conn.sendall(bytes([byte]))

    threading.Thread(target=trickle, daemon=True).start()
    api = KubeApi(_configuration(f"http://127.0.0.1:{listener.getsockname()[1]}"))
    started = time.monotonic()
    try:
        with pytest.raises(Unreachable, match="time"):
            api.request("POST", "/api/v1/namespaces/n/events", body={}, timeout=1.0)
        assert time.monotonic() - started < 3.0
    finally:
        api.close()
        listener.close()


def _one_shot_server(answer: bytes) -> socket.socket:
    """Accepts one connection, reads what comes, sends ``answer`` and closes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return listener


@pytest.mark.parametrize(
    ("scheme", "answer", "says"),
    [
        # The TLS handshake meets a server that speaks no TLS: refused while connecting.
        ("https", b"HTTP/1.1 400 Bad Request\r\n\r\n", "SSL"),
        # The answer ends before the length it announced: the write may have been applied.
        ("http", b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{}", "ended after"),
    ],
)
def test_a_write_whose_connection_fails_midway_is_unreachable(
    scheme: str, answer: bytes, says: str
) -> None:
    listener = _one_shot_server(answer)
    api = KubeApi(_configuration(f"{scheme}://127.0.0.1:{listener.getsockname()[1]}"))
    try:
        with pytest.raises(Unreachable, match=says):
            api.create("/api/v1/namespaces/n/events", {})
    finally:
        api.close()
        listener.close()
