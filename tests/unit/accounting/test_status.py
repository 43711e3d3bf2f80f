"""The desired status: numbers, state, conditions, and change detection without timestamps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from accounting.status import (
    desired_status,
    find_condition,
    oversubscription_news,
    same_standing,
    same_status,
)
from bandwidth.budget import LinkBudget, Usage

from .builders import EGRESS, NOW, books, ledger, pod, reservation

SMALL = Usage(local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000))


def status_for(
    *uls: int, node_exists: bool = True, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    pods = [pod(f"p{i}", annotations={EGRESS: str(ul)}) for i, ul in enumerate(uls)]
    result = books(ledger(reservation("r", 100, 50), capacity=SMALL), [pod("r"), *pods])
    return desired_status(result, node_exists=node_exists, generation=3, previous=previous, now=NOW)


def test_a_node_within_capacity_is_ready() -> None:
    status = status_for(200)
    assert status["state"] == "Ready"
    assert status["used"] == {
        "local": {"ulMbps": 300, "dlMbps": 50},
        "network": {"ulMbps": 300, "dlMbps": 50},
    }
    assert status["remaining"]["network"] == {"ulMbps": 700, "dlMbps": 950}
    assert status["observedGeneration"] == 3
    assert [e["podUID"] for e in status["reservations"]] == ["p0", "r"]
    sources = {e["podUID"]: e["source"] for e in status["reservations"]}
    assert sources == {"p0": "Observed", "r": "Scheduler"}
    assert (find_condition(status, "Ready") or {}).get("status") == "True"
    assert (find_condition(status, "Oversubscribed") or {}).get("status") == "False"


def test_oversubscription_sets_state_and_names_the_axes() -> None:
    status = status_for(950)
    assert status["state"] == "Oversubscribed"
    over = find_condition(status, "Oversubscribed")
    assert over is not None and over["status"] == "True"
    assert over["reason"] == "NetworkUplink"
    assert "1050 of 1000" in over["message"]
    ready = find_condition(status, "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "Oversubscribed")
    assert status["remaining"]["network"]["ulMbps"] == 0


def test_a_missing_node_is_reported() -> None:
    status = status_for(node_exists=False)
    assert status["state"] == "NodeNotFound"
    ready = find_condition(status, "Ready")
    assert ready is not None and ready["reason"] == "NodeNotFound"


def test_transition_times_move_only_when_a_condition_flips() -> None:
    first = status_for(100)
    later = NOW + timedelta(hours=1)
    result = books(ledger(capacity=SMALL), [pod("x", annotations={EGRESS: "2000"})])
    flipped = desired_status(result, node_exists=True, generation=3, previous=first, now=later)
    over = find_condition(flipped, "Oversubscribed")
    assert over is not None and over["lastTransitionTime"] == "2030-01-01T13:00:00Z"
    calm = books(ledger(capacity=SMALL), [pod("x", annotations={EGRESS: "20"})])
    steady = desired_status(calm, node_exists=True, generation=3, previous=first, now=later)
    over = find_condition(steady, "Oversubscribed")
    assert over is not None and over["lastTransitionTime"] == "2030-01-01T12:00:00Z"


def test_same_status_ignores_only_timestamps() -> None:
    stored = status_for(100)
    again = status_for(100)
    again["updatedAt"] = "2031-01-01T00:00:00Z"
    for condition in again["conditions"]:
        condition["lastTransitionTime"] = "2031-01-01T00:00:00Z"
    assert same_status(stored, again)
    assert not same_status(stored, status_for(101))
    assert not same_status({}, stored)
    assert not same_status(None, stored)


def test_oversubscription_news() -> None:
    calm, over = status_for(10), status_for(2000)
    assert oversubscription_news({}, calm) is None
    assert oversubscription_news(calm, over) == "started"
    assert oversubscription_news({}, over) == "started"
    assert oversubscription_news(over, over) is None
    assert oversubscription_news(over, calm) == "resolved"
    both = books(
        ledger(capacity=SMALL),
        [pod("x", annotations={EGRESS: "2000", "kubernetes.io/ingress-bandwidth": "2000"})],
    )
    wider = desired_status(both, node_exists=True, generation=1, previous=over, now=NOW)
    assert oversubscription_news(over, wider) == "changed"


def _with(state: str, *conditions: tuple[str, str, str]) -> dict[str, object]:
    return {
        "state": state,
        "used": {"network": {"ulMbps": 1, "dlMbps": 1}},
        "conditions": [
            {"type": t, "status": s, "reason": r, "lastTransitionTime": "x", "message": "m"}
            for t, s, r in conditions
        ],
    }


def test_standing_is_the_state_and_the_conditions_not_the_numbers() -> None:
    ready = _with("Ready", ("Ready", "True", "WithinCapacity"))
    busier = {**_with("Ready", ("Ready", "True", "WithinCapacity")), "used": {}}
    assert same_standing(ready, busier)
    assert not same_standing(None, ready)  # nothing stored yet: written at once
    over = _with("Oversubscribed", ("Ready", "False", "Oversubscribed"))
    assert not same_standing(ready, over)
    uplink = _with("Oversubscribed", ("Oversubscribed", "True", "NetworkUplink"))
    both = _with("Oversubscribed", ("Oversubscribed", "True", "NetworkUplink,NetworkDownlink"))
    assert not same_standing(uplink, both)  # other axes: the Event says so at once
