"""A resync of a cluster where nothing changed costs the apiserver no write at all."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

from .conftest import (
    RunningController,
    Scope,
    StartAccounting,
    bind_pod,
    make_pod,
    reserve,
    set_pod_phase,
    wait_for,
)

EGRESS = "kubernetes.io/egress-bandwidth"


def test_resyncs_of_an_unchanged_cluster_write_nothing(
    scope: Scope, run_accounting: StartAccounting, namespace: str
) -> None:
    running: RunningController = run_accounting(resync_period_seconds=0.5)
    nodes = scope.make_nodes(5)
    for index, node in enumerate(nodes):
        wait_for("a Bandwidth", functools.partial(scope.bandwidth, node))
        reserved = make_pod(scope.kube, namespace, f"reserved-{index}")
        reserve(scope.kube, node, reserved, 10 * (index + 1), 5, reserved_at=datetime.now(UTC))
        bind_pod(scope.kube, reserved, node)
        set_pod_phase(scope.kube, reserved, "Running", pod_ip=f"10.8.0.{index + 1}")
        make_pod(scope.kube, namespace, f"observed-{index}", node=node, annotations={EGRESS: "7"})
    # One node oversubscribed too: its condition and event must not repeat either.
    make_pod(scope.kube, namespace, "hog", node=nodes[0], annotations={EGRESS: "5G"})

    def settled() -> bool:
        for index, node in enumerate(nodes):
            entries = ((scope.bandwidth(node) or {}).get("status") or {}).get("reservations") or []
            ips = {e["podName"]: e.get("podIP") for e in entries}
            if ips.get(f"reserved-{index}") != f"10.8.0.{index + 1}":
                return False
        return True

    wait_for("every status written", settled)
    time.sleep(1.0)  # let our own writes come back through the watch
    writes_before = running.requests.writes()
    reconciles_before = running.reconciles()
    time.sleep(3.0)  # six resync periods
    reconciles = running.reconciles() - reconciles_before
    writes = {
        key: count - writes_before.get(key, 0)
        for key, count in running.requests.writes().items()
        if count != writes_before.get(key, 0)
    }
    print(f"{reconciles:.0f} reconciles in 3 s of resyncs, writes: {writes}")
    assert reconciles >= 5 * len(nodes)  # the resyncs did look at every node
    assert writes == {}
    assert running.metric("vaclab_accounting_oversubscribed_nodes") == 1
