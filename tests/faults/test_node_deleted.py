"""A node is deleted while pods are queued for it or being bound to it.

Nothing crashes; the deleted node's Bandwidth goes with it (the accounting controller deletes
the object it made), so no reservation is left on it; every pod ends up bound to a node that
exists or pending with a reason. Pods bound to the node before it went are deleted by the test,
as kube-controller-manager's pod garbage collector does with pods of a node that is gone.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from functools import partial

import pytest

from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

NODES = 4
PER_NODE = 10  # 1000 Mbps NIC uplink, 100 Mbps pods
PODS = 60
PINNED = 6


def _unschedulable_message(lab: Lab, name: str) -> str:
    """The message of the pod's PodScheduled=False condition, or ""."""
    pod = lab.kube.get(f"/api/v1/namespaces/{lab.namespace}/pods/{name}")
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("message", ""))
    return ""


def test_a_node_deleted_mid_burst_leaves_no_reservation_and_no_pod_behind(lab: Lab) -> None:
    accounting = lab.accounting()
    nodes = lab.make_nodes(NODES, network_mbps=PER_NODE * 100)
    doomed = nodes[0]
    wait_for("a Bandwidth per node", lambda: len(lab.bandwidths()) == NODES)
    scheduler = lab.scheduler()
    scheduler.wait_synced()

    pinned = [f"pinned-{i}" for i in range(PINNED)]
    burst = threading.Thread(
        target=lab.create_pods, args=([f"burst-{i:02d}" for i in range(PODS)],), daemon=True
    )
    burst.start()
    lab.create_pods(pinned, node_selector={"kubernetes.io/hostname": doomed})
    wait_for("10 pods bound", lambda: len(lab.bound()) >= 10, timeout=60, interval=0.05)
    deleted_at = datetime.now(UTC)
    lab.kube.delete(f"/api/v1/nodes/{doomed}")
    burst.join(60)
    wait_for("the doomed node's Bandwidth deleted", lambda: lab.bandwidth(doomed) is None)
    # Let the scheduler finish what it can, then collect the pods of the node that is gone.
    wait_for(
        "the live nodes full",
        lambda: sum(1 for n in lab.bound().values() if n != doomed) == (NODES - 1) * PER_NODE,
        timeout=60,
    )
    orphans = [name for name, node in lab.bound().items() if node == doomed]
    late = [
        e["pod"]
        for e in scheduler.named("pod_scheduled")
        if e["node"] == doomed and datetime.fromisoformat(e["timestamp"]) > deleted_at
    ]
    print(
        f"bound to the deleted node: {len(orphans)}, of which reported after its deletion: {late}"
    )
    for name in orphans:
        lab.delete_pod(name)
    time.sleep(2)  # nothing may be bound to it afterwards either
    result = lab.settled_audit()
    result.row("node deleted mid-burst (its orphaned pods garbage-collected)")

    result.assert_clean()
    assert doomed not in result.bound
    assert set(result.bound) <= set(nodes) and result.bound_total == (NODES - 1) * PER_NODE
    assert lab.live_nodes() == set(nodes[1:])
    for pod in lab.pods():
        if not pod["spec"].get("nodeName"):
            name = pod["metadata"]["name"]
            reason = wait_for(f"a reason on {name}", partial(_unschedulable_message, lab, name))
            assert reason.startswith("0/"), reason
    for daemon in (scheduler, accounting):
        assert daemon.alive(), daemon.tail()
        assert not daemon.tracebacks(), daemon.tail()
