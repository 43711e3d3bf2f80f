"""Prometheus metrics and health endpoints, shared by both daemons.

``/healthz`` answers 200 while the process runs; ``/readyz`` answers 200 only when every
readiness check passes (caches synced; with leader election, leading or a synced standby) and
otherwise 503 with the failing checks listed, as kube components do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, start_http_server

ReadinessCheck = Callable[[], tuple[bool, str]]


def parse_bind_address(address: str) -> tuple[str, int]:
    """``":8080"`` → ``("0.0.0.0", 8080)``; ``"127.0.0.1:0"`` keeps the host. ``"0"`` disables."""
    host, _, port = address.rpartition(":")
    return (host or "0.0.0.0", int(port))


class HealthServer:
    def __init__(self, address: str) -> None:
        self._checks: dict[str, ReadinessCheck] = {}
        checks = self._checks

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/healthz") or self.path.startswith("/livez"):
                    self._answer(200, "ok\n")
                elif self.path.startswith("/readyz"):
                    failing = []
                    for name, check in list(checks.items()):
                        ok, detail = check()
                        if not ok:
                            failing.append(f"[-]{name} failed: {detail}")
                    body = "\n".join(failing) + "\n" if failing else "ok\n"
                    self._answer(503 if failing else 200, body)
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
        self._checks[name] = check

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
