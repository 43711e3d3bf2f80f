"""A node's status is paced: while its state stays the same, the changes of one interval go
out in one write (the first at once); a change of state is written at once."""

from __future__ import annotations

import functools
import time

from .conftest import (
    JSON,
    RunningController,
    Scope,
    StartAccounting,
    make_pod,
    wait_for,
)

EGRESS = "kubernetes.io/egress-bandwidth"
INTERVAL = 3.0


def _status_writes(running: RunningController) -> int:
    return sum(
        n for (verb, resource), n in running.requests.writes().items() if "status" in resource
    )


def _charged(scope: Scope, node: str) -> set[str]:
    entries = ((scope.bandwidth(node) or {}).get("status") or {}).get("reservations") or []
    return {str(entry.get("podName")) for entry in entries}


def _state(scope: Scope, node: str) -> str:
    return str(((scope.bandwidth(node) or {}).get("status") or {}).get("state", ""))


def test_changes_within_an_interval_go_out_in_one_trailing_write(
    scope: Scope, run_accounting: StartAccounting, namespace: str
) -> None:
    running = run_accounting(status_interval_seconds=INTERVAL)
    (node,) = scope.make_nodes(1)
    wait_for("the first status", functools.partial(_state, scope, node))
    time.sleep(INTERVAL)  # the first status's interval is over: the next change is a leading one

    before = _status_writes(running)
    started = time.monotonic()
    make_pod(scope.kube, namespace, "first", node=node, annotations={EGRESS: "10M"})
    wait_for("the first pod charged", lambda: "first" in _charged(scope, node))
    assert time.monotonic() - started < INTERVAL / 2, "a leading change waited for the pacing"

    pods: list[JSON] = [
        make_pod(scope.kube, namespace, f"sibling-{i}", node=node, annotations={EGRESS: "10M"})
        for i in range(4)
    ]
    siblings = {p["metadata"]["name"] for p in pods}
    wait_for(
        "every sibling charged",
        lambda: siblings <= _charged(scope, node),
        timeout=INTERVAL + 10,
    )
    time.sleep(1.0)  # nothing else is on its way
    writes = _status_writes(running) - before
    print(f"{writes} status writes for 5 pods in {time.monotonic() - started:.1f}s")
    # One for the first pod, then the siblings' changes together: without pacing, up to one
    # per pod.
    assert writes == 2


def test_a_change_of_state_is_written_at_once(
    scope: Scope, run_accounting: StartAccounting, namespace: str
) -> None:
    run_accounting(status_interval_seconds=60.0)
    (node,) = scope.make_nodes(1)
    wait_for("the first status", functools.partial(_state, scope, node))
    make_pod(scope.kube, namespace, "small", node=node, annotations={EGRESS: "10M"})
    # Within the first status's minute, a change that leaves the node Ready waits...
    time.sleep(2.0)
    assert "small" not in _charged(scope, node)
    # ...but one that oversubscribes the node goes out at once, with what waited.
    make_pod(scope.kube, namespace, "hog", node=node, annotations={EGRESS: "5G"})
    wait_for("the node oversubscribed", lambda: _state(scope, node) == "Oversubscribed")
    assert {"small", "hog"} <= _charged(scope, node)
