"""Two scheduler replicas with leader election: SIGKILL the leader in the middle of a burst.

The standby takes over within the lease duration, every pod ends up bound exactly once, no
node is oversubscribed and no reservation is left without its pod.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bandwidth.model import parse_bandwidth
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from tests.integration.scheduler.conftest import create_pod, ledger, pod_body, pods_in, wait_until

LEASE = [
    "--leader-elect-lease-duration",
    "6s",
    "--leader-elect-renew-deadline",
    "4s",
    "--leader-elect-retry-period",
    "1s",
]


def _replica(cp: ControlPlane, name: str, namespace: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scheduler",
            "--kubeconfig",
            str(cp.kubeconfig_path),
            "--scheduler-name",
            name,
            "--leader-elect",
            "--leader-elect-resource-namespace",
            namespace,
            "--metrics-bind-address",
            "127.0.0.1:0",
            "--health-probe-bind-address",
            "127.0.0.1:0",
            "--log-format",
            "json",
            *LEASE,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def _leads(log: Path) -> bool:
    return b'"started_leading"' in log.read_bytes()


def test_standby_takes_over_after_the_leader_is_killed(
    kube: KubeApi,
    controlplane: ControlPlane,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    scheduler_name: str,
    tmp_path: Path,
) -> None:
    nodes = simulated_nodes(5)
    ledgers(nodes, network=(1000, 1000))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    replicas = [_replica(controlplane, scheduler_name, namespace, log) for log in logs]
    try:
        wait_until(lambda: any(_leads(log) for log in logs), timeout=30, what="a leader")
        leader = next(i for i, log in enumerate(logs) if _leads(log))
        standby = 1 - leader
        assert not _leads(logs[standby])
        for index in range(200):  # 50 fit: ten 100 Mbps pods per node
            create_pod(kube, namespace, pod_body(f"b{index:03d}", scheduler_name, egress="100M"))
        wait_until(
            lambda: sum(1 for p in pods_in(kube, namespace) if p["spec"].get("nodeName")) >= 10,
            timeout=60,
            what="the leader binding pods",
        )
        replicas[leader].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: _leads(logs[standby]), timeout=20, what="the standby leading")
        takeover = time.monotonic() - killed_at
        print(f"standby took over {takeover:.1f}s after SIGKILL")
        assert takeover < 15, f"took over after {takeover:.1f}s"

        def bound() -> Counter[str]:
            return Counter(
                p["spec"]["nodeName"] for p in pods_in(kube, namespace) if p["spec"].get("nodeName")
            )

        wait_until(lambda: sum(bound().values()) == 50, timeout=60, what="50 pods bound")
        time.sleep(2)  # nothing more may be bound or reserved afterwards
        placement = bound()
        assert sum(placement.values()) == 50 and set(placement.values()) == {10}
        pods_by_uid = {p["metadata"]["uid"]: p for p in pods_in(kube, namespace)}
        for node in nodes:
            view = parse_bandwidth(ledger(kube, node))
            assert view.reserved().network.ul_mbps <= 1000
            holders = {pods_by_uid[uid]["spec"].get("nodeName") for uid in view.reservations}
            assert holders == {node}, f"{node} holds reservations of pods elsewhere: {holders}"
            assert len(view.reservations) == placement[node]
    finally:
        for replica in replicas:
            replica.kill()
            replica.wait(10)
