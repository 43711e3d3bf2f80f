"""``/healthz`` fails, naming the loop, when a vital loop of a daemon stops.

Each daemon runs in-process on the real control plane, its health server on a free port, on a
``KubeApi`` that ends one chosen loop's thread by raising a ``BaseException`` from a request
that loop makes (nothing in the daemons catches those: the thread ends as on a bug nobody
foresaw). Before, ``/healthz`` answered 200 whatever had stopped; after, it answers 500 with
``[-]<loop> failed: stopped: ...`` for the loop that ended, and only for it.
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from accounting.controller import Controller
from accounting.settings import AccountingSettings
from kubeio.config import load_client_configuration
from kubeio.labels import LabelSelector
from kubeio.leader import LeaderElector
from kubeio.liveness import Check
from kubeio.rest import KubeApi
from kubeio.serving import HealthServer
from localcluster import ControlPlane
from scheduler.config import SchedulerConfig
from scheduler.loop import Scheduler
from tests.faults.proxy import FaultProxy
from tests.faults.support import SCOPE_LABEL, Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]


class LoopKilled(BaseException):
    """Ends the thread that meets it: no daemon code catches a BaseException."""


class KillsOneLoop(KubeApi):
    """Raises ``LoopKilled`` from the first request ``matches`` picks, once ``armed``."""

    def __init__(self, kubeconfig: str, matches: Callable[[str, str], bool]) -> None:
        super().__init__(load_client_configuration(kubeconfig))
        self._matches = matches
        self.armed = threading.Event()
        self.fired = threading.Event()

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        if self.armed.is_set() and not self.fired.is_set() and self._matches(method, path):
            self.fired.set()
            raise LoopKilled(f"{method} {path}")
        return super()._send(method, path, **kwargs)


def _healthz(server: HealthServer) -> tuple[int, str]:
    url = f"http://127.0.0.1:{server.port}/healthz?verbose"
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@contextmanager
def _serving(checks: list[Check]) -> Iterator[HealthServer]:
    server = HealthServer("127.0.0.1:0")
    for check in checks:
        server.add_liveness_check(check)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _fails_for(server: HealthServer, loop: str) -> str:
    _, body = wait_for(
        f"/healthz to fail for {loop}", lambda: (s := _healthz(server))[0] == 500 and s
    )
    failed = [line for line in body.splitlines() if line.startswith("[-]")]
    assert len(failed) == 1 and re.match(rf"\[-\]{loop}\S* failed: stopped", failed[0]), body
    return failed[0]


@pytest.mark.parametrize(
    ("loop", "matches"),
    [
        ("watch-pods", lambda method, path: method == "GET" and path == "/api/v1/pods"),
        ("events", lambda method, path: method == "POST" and "/events" in path),
    ],
)
def test_a_scheduler_loop_that_stops_fails_healthz(
    lab: Lab, controlplane: ControlPlane, loop: str, matches: Callable[[str, str], bool]
) -> None:
    lab.make_nodes(1)
    proxy = FaultProxy(controlplane.credentials).start()
    api = KillsOneLoop(str(proxy.kubeconfig(lab.log_dir / "proxy.kubeconfig")), matches)
    scheduler = Scheduler(api, SchedulerConfig(scheduler_name=lab.scheduler_name))
    stop = threading.Event()
    with _serving(scheduler.liveness()) as server:
        scheduler.start()
        thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_for("caches synced", lambda: scheduler.synced)
            assert _healthz(server)[0] == 200
            api.armed.set()
            proxy.partition()  # every watch reconnects
            proxy.heal()
            lab.create_pod("unplaceable", node_selector={"kubernetes.io/hostname": "nowhere"})
            print(_fails_for(server, loop))
        finally:
            stop.set()
            thread.join(5)
            scheduler.close()
            api.close()
            proxy.stop()


def test_an_accounting_worker_that_stops_fails_healthz(lab: Lab) -> None:
    api = KillsOneLoop(
        str(lab.kubeconfig), lambda method, path: method == "POST" and "/bandwidths" in path
    )
    settings = AccountingSettings(
        node_selector=LabelSelector.parse(f"{SCOPE_LABEL}={lab.scope}"), workers=2
    )
    controller = Controller(api, settings, registry=CollectorRegistry())
    stop = threading.Event()
    with _serving(controller.liveness()) as server:
        controller.start()
        thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
        thread.start()
        try:
            assert controller.wait_synced(30)
            wait_for("/healthz ok", lambda: _healthz(server)[0] == 200)
            api.armed.set()
            lab.make_nodes(1)
            print(_fails_for(server, "reconcile-"))
        finally:
            stop.set()
            thread.join(5)
            controller.close()
            api.close()


def test_an_election_loop_that_stops_fails_healthz(lab: Lab) -> None:
    api = KillsOneLoop(str(lab.kubeconfig), lambda method, path: "/leases/" in path)
    elector = LeaderElector(
        api,
        lease_name=lab.scope,
        lease_namespace=lab.namespace,
        identity="me",
        lease_duration=4,
        renew_deadline=3,
        retry_period=0.5,
    )
    with _serving([elector.heartbeat]) as server:
        elector.start()
        try:
            wait_for("leading", elector.leading.is_set)
            assert _healthz(server)[0] == 200
            api.armed.set()
            print(_fails_for(server, "leader-election"))
            assert elector.lost.is_set()  # the daemon exits rather than lead blind
        finally:
            elector.stop()
            api.close()
