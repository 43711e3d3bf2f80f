"""Every node gets a Bandwidth with the right capacity; a deleted node's Bandwidth goes away;
capacities users edit are never overwritten."""

from __future__ import annotations

import time
from typing import Any

from accounting.capacity import SEED_DEFAULT_CAPACITY
from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import capacity_json, parse_bandwidth
from kubeio.resources import BANDWIDTHS, NODES

from .conftest import (
    RunningController,
    Scope,
    StartAccounting,
    condition,
    events_about,
    wait_for,
)

NET_UL = "bandwidth.vaclab.org/network-ul-mbps"
NET_DL = "bandwidth.vaclab.org/network-dl-mbps"
LOCAL_UL = "bandwidth.vaclab.org/local-ul-mbps"


def ready_bandwidths(scope: Scope, names: list[str]) -> dict[str, Any]:
    found = scope.bandwidths()
    return {
        name: obj
        for name, obj in found.items()
        if name in names and (obj.get("status") or {}).get("state") == "Ready"
    }


def test_fifty_nodes_get_fifty_bandwidths_and_a_deleted_node_loses_its_own(
    scope: Scope, run_accounting: StartAccounting
) -> None:
    running: RunningController = run_accounting()
    started = time.monotonic()
    names = scope.make_nodes(50)
    objects = wait_for(
        "50 Ready Bandwidths", lambda: len(ready_bandwidths(scope, names)) == 50, timeout=25
    )
    elapsed = time.monotonic() - started
    print(f"50 nodes to 50 Ready Bandwidths in {elapsed:.2f}s")
    objects = ready_bandwidths(scope, names)
    assert objects
    for name, obj in objects.items():
        assert obj["spec"]["node"] == name
        assert obj["spec"]["capacity"] == capacity_json(SEED_DEFAULT_CAPACITY)
        owner = obj["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("Node", name)
        assert obj["status"]["remaining"] == capacity_json(SEED_DEFAULT_CAPACITY)
        assert condition(obj, "Ready")["status"] == "True"
    assert running.metric("vaclab_accounting_bandwidths_created_total") == 50
    labels = {"node": names[7], "datapath": "network", "direction": "uplink"}
    assert running.metric("vaclab_accounting_capacity_mbps", labels) == 1000

    created = events_about(scope.kube, "default", "Bandwidth", names[7])
    assert any(e["reason"] == "Created" for e in created), created

    scope.delete_node(names[7])
    wait_for("the deleted node's Bandwidth to go", lambda: scope.bandwidth(names[7]) is None)
    assert running.metric("vaclab_accounting_capacity_mbps", labels) is None
    assert len(scope.bandwidths()) == 49  # nobody else's


def test_a_node_carries_its_own_capacity_in_labels_and_annotations(
    scope: Scope, run_accounting: StartAccounting
) -> None:
    run_accounting(default_capacity=Usage(local=LinkBudget(9, 9), network=LinkBudget(8, 8)))
    [labelled] = scope.make_nodes(
        1,
        labels={NET_UL: "2500", NET_DL: "100", LOCAL_UL: "40G"},
        annotations={NET_DL: "5000"},  # the annotation wins over the label
    )
    obj = wait_for("the labelled node's Bandwidth", lambda: scope.bandwidth(labelled))
    assert parse_bandwidth(obj).capacity == Usage(
        local=LinkBudget(40000, 9), network=LinkBudget(2500, 5000)
    )


def test_a_node_with_a_bad_capacity_label_gets_a_warning_and_no_bandwidth(
    scope: Scope, run_accounting: StartAccounting
) -> None:
    run_accounting()
    [bad, good] = scope.make_nodes(1, labels={NET_UL: "fast"}) + scope.make_nodes(1)
    wait_for("the good node's Bandwidth", lambda: scope.bandwidth(good))
    warnings = wait_for(
        "a warning on the bad node",
        lambda: [
            e
            for e in events_about(scope.kube, "default", "Node", bad)
            if e["reason"] == "InvalidBandwidthCapacity"
        ],
    )
    assert NET_UL in warnings[0]["message"] and "fast" in warnings[0]["message"]
    assert scope.bandwidth(bad) is None
    # Fixing the label is a node event: the Bandwidth follows.
    scope.kube.patch(NODES.path(name=bad), {"metadata": {"labels": {NET_UL: "3000"}}})
    obj = wait_for("the fixed node's Bandwidth", lambda: scope.bandwidth(bad))
    assert parse_bandwidth(obj).capacity.network.ul_mbps == 3000


def test_a_capacity_edited_by_a_user_survives_restarts_and_resyncs(
    scope: Scope, run_accounting: StartAccounting
) -> None:
    first = run_accounting(resync_period_seconds=0.5)
    [node] = scope.make_nodes(1)
    wait_for("the Bandwidth", lambda: condition(scope.bandwidth(node), "Ready"))
    scope.kube.patch(
        BANDWIDTHS.path(name=node),
        {"spec": {"capacity": {"network": {"ulMbps": 777, "dlMbps": 778}}}},
    )

    def remaining_network() -> dict[str, Any] | None:
        obj = scope.bandwidth(node) or {}
        return ((obj.get("status") or {}).get("remaining") or {}).get("network")

    wait_for(
        "status to follow the edit", lambda: remaining_network() == {"ulMbps": 777, "dlMbps": 778}
    )
    first.stop()
    second = run_accounting(resync_period_seconds=0.5)
    before = second.reconciles()
    wait_for("three resyncs", lambda: second.reconciles() >= before + 3, timeout=10)
    obj = scope.bandwidth(node)
    assert obj is not None
    assert obj["spec"]["capacity"]["network"] == {"ulMbps": 777, "dlMbps": 778}
    assert obj["spec"]["capacity"]["local"] == capacity_json(SEED_DEFAULT_CAPACITY)["local"]
    assert second.metric("vaclab_accounting_bandwidths_created_total") == 0
