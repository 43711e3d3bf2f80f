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
  close new ones unanswered, as a network partition between the daemons and the apiserver;
- :meth:`target` — for the requests of one verb whose path contains a given part (the
  binding of one pod, the GETs of one pod), for ``seconds`` or the next ``count`` of them:
  answer with a status, forward the request and lose its answer (the write happened, the
  client never hears so), or forward it only after a delay;
- :meth:`hold` / :meth:`release` — keep the events of watches whose path contains a given
  part (``"/bandwidths"``) from the daemon until released (or the connection is dropped): a
  watch that lags behind, as when the apiserver's watch cache or the network is slow.

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


@dataclass
class _Target:
    method: str
    path_part: str
    action: str  # "answer", "lose" or "delay"
    status: int
    delay: float
    until: float
    remaining: int | None

    def matches(self, method: str, path: str, now: float) -> bool:
        return (
            method == self.method
            and self.path_part in path.split("?")[0]
            and now < self.until
            and (self.remaining is None or self.remaining > 0)
        )


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
        self._targets: list[_Target] = []
        self._held: set[str] = set()
        self._held_changed = threading.Condition(self._lock)
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
        with self._lock:
            self._held.clear()
            self._held_changed.notify_all()
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
        """Drop every connection and leave new requests unanswered until :meth:`heal`; held
        watch events are dropped with their connections."""
        with self._lock:
            self._partitioned = True
            self._held.clear()
            self._held_changed.notify_all()
        self._drop_connections()

    def heal(self) -> None:
        with self._lock:
            self._partitioned = False

    def target(
        self,
        method: str,
        path_part: str,
        *,
        status: int = 0,
        lose_answer: bool = False,
        delay: float = 0.0,
        seconds: float = float("inf"),
        count: int | None = None,
    ) -> None:
        """For ``method`` requests whose path contains ``path_part``: answer ``status``, or
        forward and ``lose_answer``, or forward after ``delay`` seconds; for ``seconds`` or
        the next ``count`` such requests, whichever ends first. Targets are tried in the
        order they were set, before :meth:`inject`."""
        action = "answer" if status else "lose" if lose_answer else "delay"
        until = time.monotonic() + seconds
        with self._lock:
            self._targets.append(_Target(method, path_part, action, status, delay, until, count))

    def hold(self, path_part: str) -> None:
        """Keep watch events on paths containing ``path_part`` until :meth:`release`."""
        with self._lock:
            self._held.add(path_part)

    def release(self, path_part: str) -> None:
        with self._lock:
            self._held.discard(path_part)
            self._held_changed.notify_all()

    def _deliver(self, path: str) -> bool:
        """Wait while events on ``path`` are held; False when they are to be dropped instead
        (a partition or the proxy's end came first)."""
        if "watch=true" not in path:
            return True
        with self._lock:
            while any(part in path for part in self._held) and not self._stopped.is_set():
                self._held_changed.wait(0.2)
            return not (self._partitioned or self._stopped.is_set())

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

    def _decide(self, agent: str, method: str, path: str) -> tuple[str, int, float]:
        """``(action, status, delay)``: ``drop``, ``answer`` (with ``status``), ``lose``
        (forward, drop the answer) or ``forward`` (after ``delay``); records the request."""
        now = time.monotonic()
        delay = 0.0
        with self._lock:
            target = next((t for t in self._targets if t.matches(method, path, now)), None)
            if target is not None and target.remaining is not None:
                target.remaining -= 1
            if len(self._records) >= self._max_requests:
                action, status = "drop", 0
                threading.Thread(target=self.stop, daemon=True).start()
            elif self._partitioned:
                action, status = "drop", 0
            elif target is not None and target.action != "delay":
                action, status = target.action, target.status
            elif now < self._fault_until and self._random.random() < self._fault_share:
                action, status = "answer", self._random.choice(self._fault_statuses)
            else:
                action, status = "forward", 0
                delay = target.delay if target is not None else 0.0
            self._records.append(Record(now, agent, method, path, action, status))
            return action, status, delay

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
                action, status, delay = proxy._decide(agent, self.command, self.path)
                if action == "drop":
                    self._drop()
                    return
                if action == "answer":
                    self._answer(status)
                    return
                if delay:
                    time.sleep(delay)
                self._forward(body, lose_answer=action == "lose")

            def _drop(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

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

            def _forward(self, body: bytes | None, *, lose_answer: bool = False) -> None:
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
                if lose_answer:
                    response.read()
                    self._close_upstream()
                    self._drop()
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
                    if not proxy._deliver(self.path):
                        raise OSError("held watch events dropped")
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler
