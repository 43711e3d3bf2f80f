"""Prometheus metrics and health endpoints, shared by both daemons.

``/healthz`` (and ``/livez``) answers 200 while every liveness check passes — each vital loop
of the daemon reports progress (``kubeio.liveness``) — and 500 naming the loops that stopped
or stalled, so that the kubelet restarts a process that answers but no longer works.
``/readyz`` answers 200 only when every readiness check passes (caches synced) and otherwise
503. Both list every check with ``?verbose``, as kube components do::

    [+]leader-election ok
    [-]watch-pods failed: stopped: Unreachable: watch /api/v1/pods: ...
    healthz check failed

Once the daemon is stopping (``stopping()``), its loops end on purpose: ``/healthz`` no longer
fails because of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, start_http_server

from kubeio.liveness import Check

ReadinessCheck = Callable[[], tuple[bool, str]]


def parse_bind_address(address: str) -> tuple[str, int]:
    """``":8080"`` → ``("0.0.0.0", 8080)``; ``"127.0.0.1:0"`` keeps the host. ``"0"`` disables."""
    host, _, port = address.rpartition(":")
    return (host or "0.0.0.0", int(port))


def _report(
    checks: Iterable[tuple[str, ReadinessCheck]], verbose: bool, what: str
) -> tuple[bool, str]:
    lines = []
    healthy = True
    for name, check in checks:
        try:
            ok, detail = check()
        except Exception as error:  # a check that raises is a failing check
            ok, detail = False, f"{type(error).__name__}: {error}"
        healthy = healthy and ok
        if not ok:
            lines.append(f"[-]{name} failed: {detail}")
        elif verbose:
            lines.append(f"[+]{name} ok")
    if not healthy:
        lines.append(f"{what} check failed")
    elif not verbose or not lines:
        lines = ["ok"]
    else:
        lines.append(f"{what} check passed")
    return healthy, "\n".join(lines) + "\n"


class HealthServer:
    def __init__(self, address: str) -> None:
        self._readiness: dict[str, ReadinessCheck] = {}
        self._liveness: dict[str, ReadinessCheck] = {}
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                verbose = "verbose" in query
                if path in ("/healthz", "/livez"):
                    checks = [] if server._stopping.is_set() else list(server._liveness.items())
                    ok, body = _report(checks, verbose, path.strip("/"))
                    self._answer(200 if ok else 500, body)
                elif path == "/readyz":
                    ok, body = _report(list(server._readiness.items()), verbose, "readyz")
                    self._answer(200 if ok else 503, body)
                else:
                    self._answer(404, "not found\n")

            def _answer(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(parse_bind_address(address), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        self._readiness[name] = check

    def add_liveness_check(self, check: Check) -> None:
        self._liveness[check.name] = check.check

    def stopping(self) -> None:
        """The daemon is shutting down: its loops end on purpose."""
        self._stopping.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(address: str, registry: CollectorRegistry) -> int:
    """Start the metrics endpoint; returns the bound port (useful with port 0)."""
    host, port = parse_bind_address(address)
    server, _ = start_http_server(port, addr=host, registry=registry)
    return int(server.server_address[1])
