"""``python -m accounting`` as a process: flags, readiness, metrics, a clean stop, and a
missing CRD that is waited for instead of crashing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeio.config import load_client_configuration
from kubeio.resources import BANDWIDTHS, NODES
from kubeio.rest import KubeApi
from localcluster import ControlPlane, install_crds
from localcluster.process import free_port

from .conftest import Scope, wait_for


class Daemon:
    """The controller as a child process, its log lines collected as they come."""

    def __init__(self, kubeconfig: Path, *extra: str) -> None:
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "accounting",
                f"--kubeconfig={kubeconfig}",
                f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
                f"--health-probe-bind-address=127.0.0.1:{self.health_port}",
                "--log-format=json",
                *extra,
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[str]:
        names = []
        for line in list(self.lines):
            try:
                names.append(json.loads(line).get("event", ""))
            except ValueError:
                names.append(line)
        return names

    def get(self, port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        return self.get(self.health_port, "/readyz")[0] == 200

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        finally:
            self._reader.join(timeout=2)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


def test_the_daemon_serves_metrics_and_readiness_and_stops_cleanly(
    controlplane: ControlPlane, scope: Scope, daemons: list[Daemon]
) -> None:
    daemon = Daemon(
        controlplane.kubeconfig_path,
        f"--node-selector={scope.selector}",
        "--default-network-ul-mbps=4000",
        "--resync-period=1s",
    )
    daemons.append(daemon)
    wait_for("readiness", daemon.ready, timeout=15)
    [node] = scope.make_nodes(1)
    bandwidth = wait_for("the Bandwidth", lambda: scope.bandwidth(node))
    assert bandwidth["spec"]["capacity"]["network"] == {"ulMbps": 4000, "dlMbps": 1000}
    series = (
        f'vaclab_accounting_capacity_mbps{{datapath="network",direction="uplink",node="{node}"}}'
        " 4000.0"
    )
    wait_for(
        "the capacity series", lambda: series in daemon.get(daemon.metrics_port, "/metrics")[1]
    )
    assert daemon.stop() == 0
    events = daemon.events()
    assert "started" in events and "caches_synced" in events and "stopped" in events
    assert not any("Traceback" in line for line in daemon.lines), "\n".join(daemon.lines)


def test_bad_flags_exit_with_usage_and_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "accounting", "--node-selector=a in (b"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "unbalanced" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.controlplane
def test_a_missing_crd_is_waited_for_without_crashing(daemons: list[Daemon]) -> None:
    with ControlPlane() as bare:
        daemon = Daemon(bare.kubeconfig_path)
        daemons.append(daemon)
        wait_for(
            "resource_not_served", lambda: "resource_not_served" in daemon.events(), timeout=15
        )
        status, body = daemon.get(daemon.health_port, "/readyz")
        assert status == 503 and "bandwidths" in body
        time.sleep(1.0)
        assert daemon.process.poll() is None  # still running, waiting
        with bare.api_client() as client:
            install_crds(client)
        wait_for("readiness once the CRD is there", daemon.ready, timeout=40)
        api = KubeApi(load_client_configuration(str(bare.kubeconfig_path)))
        try:
            api.create(
                NODES.path(), {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "late"}}
            )
            wait_for("the late node's Bandwidth", lambda: api.list(BANDWIDTHS.path())[0])
        finally:
            api.close()
        assert daemon.stop() == 0
    assert not any("Traceback" in line for line in daemon.lines), "\n".join(daemon.lines)


def test_with_leader_election_only_the_leader_writes_and_a_standby_takes_over(
    controlplane: ControlPlane, scope: Scope, daemons: list[Daemon]
) -> None:
    flags = (
        f"--node-selector={scope.selector}",
        "--leader-elect",
        f"--leader-elect-resource-name={scope.prefix}-accounting",
        "--leader-elect-resource-namespace=default",
        "--leader-elect-lease-duration=4s",
        "--leader-elect-renew-deadline=3s",
        "--leader-elect-retry-period=1s",
    )
    leader = Daemon(controlplane.kubeconfig_path, *flags)
    daemons.append(leader)
    [first] = scope.make_nodes(1)
    wait_for("the leader's Bandwidth", lambda: scope.bandwidth(first), timeout=15)
    standby = Daemon(controlplane.kubeconfig_path, *flags)
    daemons.append(standby)
    wait_for("the standby's caches", standby.ready, timeout=15)
    leader.kill()  # no goodbye: the standby must wait for the Lease to expire
    [second] = scope.make_nodes(1)
    wait_for("the new leader's Bandwidth", lambda: scope.bandwidth(second), timeout=15)
    assert standby.stop() == 0
    events = standby.events()
    assert "started_leading" in events
    leading_from = events.index("started_leading")
    assert "bandwidth_created" not in events[:leading_from]  # it never wrote while standing by
    created = [line for line in standby.lines if "bandwidth_created" in line]
    assert len(created) == 1 and second in created[0]
