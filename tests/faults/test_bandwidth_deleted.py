"""A user deletes Bandwidth objects that hold reservations.

The accounting controller creates them again, and the new objects start with a reservation for
every live pod bound to their node that asks for bandwidth: the ledger is rebuilt from the
pods, so nothing is lost, and the scheduler, which charges the ledger and the bound pods, goes
on filling the nodes to their capacity and no further.
"""

from __future__ import annotations

from collections import Counter
from functools import partial

import pytest

from bandwidth.model import parse_bandwidth
from kubeio.resources import BANDWIDTHS
from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

NODES = 3
PER_NODE = 10  # 1000 Mbps NIC uplink, 100 Mbps pods


def _ledger(lab: Lab, node: str) -> dict[str, tuple[str, int]]:
    obj = lab.bandwidth(node)
    if obj is None:
        return {}
    entries = parse_bandwidth(obj).reservations.values()
    return {r.pod_uid: (r.pod_name, r.request.ul_mbps) for r in entries}


def _recreated(lab: Lab, node: str, old_uid: str) -> bool:
    uid = ((lab.bandwidth(node) or {}).get("metadata") or {}).get("uid")
    return uid is not None and uid != old_uid


def test_deleted_bandwidths_come_back_with_their_reservations(lab: Lab) -> None:
    accounting = lab.accounting()
    nodes = lab.make_nodes(NODES, network_mbps=PER_NODE * 100)
    wait_for("a Bandwidth per node", lambda: len(lab.bandwidths()) == NODES)
    scheduler = lab.scheduler()
    scheduler.wait_synced()
    lab.create_pods([f"first-{i:02d}" for i in range(20)])
    wait_for("20 pods bound", lambda: len(lab.bound()) == 20, timeout=60)
    before = {node: _ledger(lab, node) for node in nodes}
    assert sum(len(entries) for entries in before.values()) == 20

    for node in nodes:  # every Bandwidth that holds something, deleted by hand
        obj = lab.bandwidth(node)
        assert obj is not None
        if obj["spec"].get("reservations"):
            lab.kube.delete(
                BANDWIDTHS.path(name=node), preconditions={"uid": obj["metadata"]["uid"]}
            )
            wait_for(
                f"{node}'s Bandwidth re-created",
                partial(_recreated, lab, node, obj["metadata"]["uid"]),
            )
    after = {node: _ledger(lab, node) for node in nodes}
    assert after == before

    # The books and the scheduler agree: the rest of the room is filled, and no more.
    lab.create_pods([f"second-{i:02d}" for i in range(15)])
    wait_for("30 pods bound", lambda: len(lab.bound()) == NODES * PER_NODE, timeout=60)
    result = lab.settled_audit()
    result.row("Bandwidth objects holding 20 reservations deleted by a user")

    result.assert_clean()
    assert result.bound == Counter(dict.fromkeys(nodes, PER_NODE))
    assert result.pending == 5 and result.reservations == NODES * PER_NODE
    rebuilt = accounting.named("bandwidth_created")[NODES:]
    print("re-created:", [(e["node"], e.get("reservations")) for e in rebuilt])
    for daemon in (scheduler, accounting):
        assert daemon.alive(), daemon.tail()
        assert not daemon.tracebacks(), daemon.tail()
