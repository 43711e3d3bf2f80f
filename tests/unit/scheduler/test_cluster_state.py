"""ClusterState on plain watch events: no server."""

from __future__ import annotations

from typing import Any

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import new_bandwidth_object
from kubeio.watchcache import ADDED, MODIFIED
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig
from scheduler.queue import SchedulingQueue


def _node(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_a_bandwidth_whose_spec_node_names_another_node_is_not_that_nodes_ledger() -> None:
    warned: list[tuple[str, str]] = []
    state = ClusterState(
        SchedulerConfig(), SchedulingQueue(), on_invalid_ledger=lambda *w: warned.append(w)
    )
    state.on_node(ADDED, None, _node("node-1"))
    own = new_bandwidth_object("node-1", Usage(LinkBudget(1, 1), LinkBudget(1000, 1000)))
    state.on_bandwidth(ADDED, None, own | {"metadata": {"name": "node-1", "generation": 3}})
    roomy = Usage(LinkBudget(10**9, 10**9), LinkBudget(10**9, 10**9))
    alias = new_bandwidth_object("alias", roomy)
    alias["spec"]["node"] = "node-1"
    alias["metadata"]["generation"] = 3
    state.on_bandwidth(ADDED, None, alias)

    ledger = state.ledger_of("node-1")
    assert ledger is not None and ledger.name == "node-1"
    assert ledger.capacity.network.ul_mbps == 1000
    assert warned == [("alias", "spec.node 'node-1' is not the object's name 'alias'; ignored")]


def test_a_status_write_is_not_read_again_a_spec_write_is() -> None:
    state = ClusterState(SchedulerConfig(), SchedulingQueue())
    state.on_node(ADDED, None, _node("node-1"))
    body = new_bandwidth_object("node-1", Usage(LinkBudget(1, 1), LinkBudget(1000, 1000)))
    body["metadata"] |= {"uid": "u1", "generation": 2}
    state.on_bandwidth(ADDED, None, body)
    held = state.ledger_of("node-1")

    status_only = {**body, "status": {"state": "Ready"}}
    state.on_bandwidth(MODIFIED, body, status_only)
    assert state.ledger_of("node-1") is held  # same UID and generation: nothing parsed

    spec_write = new_bandwidth_object("node-1", Usage(LinkBudget(1, 1), LinkBudget(500, 500)))
    spec_write["metadata"] |= {"uid": "u1", "generation": 3}
    state.on_bandwidth(MODIFIED, status_only, spec_write)
    ledger = state.ledger_of("node-1")
    assert ledger is not None and ledger.capacity.network.ul_mbps == 500

    again = new_bandwidth_object("node-1", Usage(LinkBudget(1, 1), LinkBudget(700, 700)))
    again["metadata"] |= {"uid": "u2", "generation": 3}  # made again: its own generations
    state.on_bandwidth(MODIFIED, spec_write, again)
    ledger = state.ledger_of("node-1")
    assert ledger is not None and ledger.capacity.network.ul_mbps == 700
