"""A loopback HTTP proxy in front of the apiserver that can fail on purpose.

Daemons talk plain HTTP to ``http://127.0.0.1:<port>`` (a kubeconfig without credentials,
written by :meth:`FaultProxy.kubeconfig`); the proxy forwards each request over TLS to the
real apiserver with the admin client certificate. Plain HTTP on the loopback side keeps the
proxy free of its own certificate; the daemons' client code is the same for ``http`` and
``https`` (urllib3 picks the scheme).

Faults, each for a bounded time:

- :meth:`inject` — for ``seconds``, answer a ``share`` of requests itself with one of
  ``statuses`` (``429`` carries ``Retry-After: 1``) instead of forwarding them;
- :meth:`partition` / :meth:`heal` — drop every open connection (watches included) and
  close new ones unanswered, as a network partition between the daemons and the apiserver.

Every request is recorded (time, user agent, verb, path, status answered, injected or not)
for the test to count. The proxy stops by itself after ``max_seconds`` or ``max_requests``,
whichever comes first, and on :meth:`stop` (it is a context manager).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from localcluster.kubeconfig import ClientCredentials

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True, slots=True)
class Record:
    at: float
    """``time.monotonic()`` when the request arrived."""
    agent: str
    method: str
    path: str
    action: str
    """``forward`` (sent to the apiserver), ``answer`` (a fault injected) or ``drop``."""
    status: int
    """The status injected; 0 when forwarded or dropped."""

    @property
    def injected(self) -> bool:
        return self.action == "answer"


class FaultProxy:
    def __init__(
        self,
        upstream: ClientCredentials,
        *,
        max_seconds: float = 240.0,
        max_requests: int = 200_000,
        seed: int = 7,
    ) -> None:
        self._upstream = upstream
        host, _, port = upstream.server.removeprefix("https://").partition(":")
        self._upstream_address = (host, int(port))
        self._tls = ssl.create_default_context(cafile=str(upstream.ca_cert))
        self._tls.load_cert_chain(str(upstream.client_cert), str(upstream.client_key))
        self._max_seconds = max_seconds
        self._max_requests = max_requests
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._sockets: set[socket.socket] = set()
        self._fault_until = 0.0
        self._fault_share = 0.0
        self._fault_statuses: tuple[int, ...] = ()
        self._partitioned = False
        self._stopped = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._serving = threading.Thread(
            target=self._server.serve_forever, name="fault-proxy", daemon=True
        )
        self._deadline = threading.Timer(max_seconds, self.stop)
        self._deadline.daemon = True

    # ------------------------------------------------------------------------ life cycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._serving.start()
        self._deadline.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop every connection; idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._deadline.cancel()
        self._drop_connections()
        self._server.shutdown()
        self._server.server_close()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def kubeconfig(self, path: Path) -> Path:
        """A kubeconfig that reaches the apiserver through this proxy (no credentials)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "proxy", "cluster": {"server": self.url}}],
            "users": [{"name": "anyone", "user": {}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "anyone"}}],
            "current-context": "proxy",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # ---------------------------------------------------------------------------- faults
    def inject(self, statuses: Iterable[int], share: float, seconds: float) -> None:
        """From now on, for ``seconds``, answer about ``share`` of requests with a status."""
        with self._lock:
            self._fault_statuses = tuple(statuses)
            self._fault_share = share
            self._fault_until = time.monotonic() + seconds

    def partition(self) -> None:
        """Drop every connection and leave new requests unanswered until :meth:`heal`."""
        with self._lock:
            self._partitioned = True
        self._drop_connections()

    def heal(self) -> None:
        with self._lock:
            self._partitioned = False

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    # -------------------------------------------------------------------------- plumbing
    def _drop_connections(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _track(self, sock: socket.socket, keep: bool) -> None:
        with self._lock:
            if keep:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    def _decide(self, agent: str, method: str, path: str) -> tuple[str, int]:
        """``("drop", 0)``, ``("answer", status)`` or ``("forward", 0)``; records the request."""
        now = time.monotonic()
        with self._lock:
            if len(self._records) >= self._max_requests:
                action, status = "drop", 0
                threading.Thread(target=self.stop, daemon=True).start()
            elif self._partitioned:
                action, status = "drop", 0
            elif now < self._fault_until and self._random.random() < self._fault_share:
                action, status = "answer", self._random.choice(self._fault_statuses)
            else:
                action, status = "forward", 0
            self._records.append(Record(now, agent, method, path, action, status))
            return action, status

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes
            upstream: http.client.HTTPSConnection | None = None

            def setup(self) -> None:
                super().setup()
                proxy._track(self.connection, keep=True)

            def finish(self) -> None:
                proxy._track(self.connection, keep=False)
                self._close_upstream()
                with contextlib.suppress(OSError):
                    super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                self._serve()

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                agent = self.headers.get("User-Agent", "")
                action, status = proxy._decide(agent, self.command, self.path)
                if action == "drop":
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action == "answer":
                    self._answer(status)
                    return
                self._forward(body)

            def _answer(self, status: int) -> None:
                reason = "TooManyRequests" if status == 429 else "InternalError"
                payload = json.dumps(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "message": f"injected by the fault proxy ({status})",
                        "reason": reason,
                        "code": status,
                    }
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(payload)

            def _connect(self) -> http.client.HTTPSConnection:
                if self.upstream is None:
                    host, port = proxy._upstream_address
                    self.upstream = http.client.HTTPSConnection(
                        host, port, context=proxy._tls, timeout=400
                    )
                return self.upstream

            def _forward(self, body: bytes | None) -> None:
                headers = {
                    key: value
                    for key, value in self.headers.items()
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "authorization"
                }
                try:
                    upstream = self._connect()
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    if upstream.sock is not None:
                        proxy._track(upstream.sock, keep=True)
                    response = upstream.getresponse()
                except (OSError, http.client.HTTPException):
                    # The apiserver is away (restarting): the client sees a dropped connection.
                    self._close_upstream()
                    self.close_connection = True
                    return
                try:
                    self._relay(response)
                except (OSError, http.client.HTTPException):
                    self._close_upstream()
                    self.close_connection = True

            def _close_upstream(self) -> None:
                if self.upstream is not None:
                    if self.upstream.sock is not None:
                        proxy._track(self.upstream.sock, keep=False)
                    self.upstream.close()
                    self.upstream = None

            def _relay(self, response: http.client.HTTPResponse) -> None:
                self.send_response_only(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                length = response.getheader("Content-Length")
                if response.status in (204, 304) or self.command == "HEAD":
                    response.read()
                    self.end_headers()
                elif length is not None:
                    payload = response.read()
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                else:
                    self._relay_stream(response)
                if response.will_close:
                    self._close_upstream()

            def _relay_stream(self, response: http.client.HTTPResponse) -> None:
                """A response without a length (a watch): chunk by chunk, as it comes."""
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    chunk = response.read1(64 * 1024)
                    if not chunk:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler
