"""ClusterState on plain watch events: no server."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import NodeBandwidth, Reservation, new_bandwidth_object
from bandwidth.request import BandwidthRequest
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


_CAPACITY = Usage(LinkBudget(1000, 1000), LinkBudget(1000, 1000))
_ONE = Reservation("pod-1", "p1", "ns", BandwidthRequest(100, 100))
_TWO = Reservation("pod-2", "p2", "ns", BandwidthRequest(100, 100))


def _stored(generation: int, *reservations: Reservation) -> dict[str, Any]:
    stored = new_bandwidth_object("node-1", _CAPACITY, reservations=reservations)
    stored["metadata"] |= {"uid": "u1", "generation": generation}
    return stored


def _state_holding(stored: dict[str, Any], queue: SchedulingQueue | None = None) -> ClusterState:
    state = ClusterState(SchedulerConfig(), queue or SchedulingQueue())
    state.on_node(ADDED, None, _node("node-1"))
    state.on_bandwidth(ADDED, None, stored)
    return state


def _held(state: ClusterState) -> NodeBandwidth:
    ledger = state.ledger_of("node-1")
    assert ledger is not None
    return ledger


def test_our_own_write_is_held_at_once_and_its_watch_event_not_read_again() -> None:
    stored = _stored(4)
    state = _state_holding(stored)
    written = replace(_held(state), reservations={"pod-1": _ONE}, generation=5)
    state.ledger_written(written)
    assert state.ledger_of("node-1") is written

    # The watch catches up: an event of a generation held already (the older write, or
    # this very one) changes nothing.
    state.on_bandwidth(MODIFIED, None, stored)
    assert state.ledger_of("node-1") is written
    echoed = _stored(5, _ONE)
    state.on_bandwidth(MODIFIED, stored, echoed)
    assert state.ledger_of("node-1") is written

    # Someone else's later spec write is read.
    state.on_bandwidth(MODIFIED, echoed, _stored(6, _ONE, _TWO))
    later = _held(state)
    assert (later.generation, sorted(later.reservations)) == (6, ["pod-1", "pod-2"])


def test_a_write_the_watch_has_moved_past_or_of_another_object_is_not_held() -> None:
    state = _state_holding(_stored(7, _ONE))
    held = _held(state)
    state.ledger_written(replace(held, reservations={}, generation=7))  # not newer
    state.ledger_written(replace(held, reservations={}, generation=6))  # older
    state.ledger_written(replace(held, reservations={}, uid="u0", generation=9))  # replaced
    assert state.ledger_of("node-1") is held
    state.ledger_written(replace(held, name="node-2", reservations={}, generation=8))  # unknown
    assert state.ledger_of("node-2") is None


def test_releasing_by_our_own_write_retries_the_unschedulable() -> None:
    queue = SchedulingQueue()
    changes: list[int] = []
    queue.cluster_changed = lambda: changes.append(1)  # type: ignore[method-assign]
    state = _state_holding(_stored(2, _ONE), queue)
    held = _held(state)
    changes.clear()

    state.ledger_written(replace(held, reservations={**held.reservations}, generation=3))
    assert changes == []  # nothing freed
    state.ledger_written(replace(held, reservations={}, generation=4))
    assert changes == [1]
