"""Reservations of pods that are gone, finished, never bound or bound elsewhere are released;
the others are kept, and the status adds up."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from bandwidth.model import parse_bandwidth

from .conftest import (
    RunningController,
    Scope,
    StartAccounting,
    bind_pod,
    delete_pod,
    events_about,
    make_pod,
    reserve,
    reserved_uids,
    set_pod_phase,
    wait_for,
)


def used_network(scope: Scope, node: str) -> dict[str, Any] | None:
    obj = scope.bandwidth(node) or {}
    return ((obj.get("status") or {}).get("used") or {}).get("network")


def test_deleting_or_finishing_a_pod_releases_its_reservation(
    scope: Scope, run_accounting: StartAccounting, namespace: str
) -> None:
    running: RunningController = run_accounting()
    [node] = scope.make_nodes(1)
    wait_for("the Bandwidth", lambda: scope.bandwidth(node))
    wanted = {"a": (100, 10), "b": (200, 20), "c": (300, 30), "d": (400, 40)}
    pods = {}
    for name, (ul, dl) in wanted.items():
        pods[name] = make_pod(scope.kube, namespace, name, node=node)
        reserve(scope.kube, node, pods[name], ul, dl, reserved_at=datetime.now(UTC))
    set_pod_phase(scope.kube, pods["c"], "Running", pod_ip="10.9.0.3")

    def expected(names: list[str]) -> dict[str, Any]:
        return {
            "ulMbps": sum(wanted[n][0] for n in names),
            "dlMbps": sum(wanted[n][1] for n in names),
        }

    wait_for("all four charged", lambda: used_network(scope, node) == expected(list(wanted)))

    def details() -> dict[str, Any]:
        obj = scope.bandwidth(node) or {}
        return {e["podName"]: e for e in (obj.get("status") or {}).get("reservations") or []}

    wait_for("c's pod IP", lambda: details()["c"].get("podIP") == "10.9.0.3")
    assert details()["c"]["phase"] == "Running"
    assert "podIP" not in details()["a"]
    assert details()["a"]["source"] == "Scheduler"

    started = time.monotonic()
    delete_pod(scope.kube, pods["a"])
    set_pod_phase(scope.kube, pods["b"], "Succeeded")
    wait_for(
        "a and b released",
        lambda: (
            reserved_uids(scope.kube, node)
            == {pods["c"]["metadata"]["uid"], pods["d"]["metadata"]["uid"]}
        ),
    )
    print(f"released in {time.monotonic() - started:.2f}s")
    wait_for("status to add up", lambda: used_network(scope, node) == expected(["c", "d"]))
    obj = scope.bandwidth(node)
    assert obj is not None
    assert obj["status"]["remaining"]["network"] == {"ulMbps": 1000 - 700, "dlMbps": 1000 - 70}
    assert {e["podName"] for e in obj["status"]["reservations"]} == {"c", "d"}
    reasons = {
        "PodDeleted": 1.0,
        "PodSucceeded": 1.0,
    }
    for reason, count in reasons.items():
        sample = running.metric(
            "vaclab_accounting_stale_reservations_released_total", {"reason": reason}
        )
        assert sample == count

    def release_messages() -> list[str]:
        events = events_about(scope.kube, "default", "Bandwidth", node)
        return [e["message"] for e in events if e["reason"] == "ReservationReleased"]

    messages = wait_for(
        "two release events", lambda: len(release_messages()) == 2 and release_messages()
    )
    assert any(f"{namespace}/a" in m and "no longer exists" in m for m in messages), messages
    assert any(f"{namespace}/b" in m and "Succeeded" in m for m in messages), messages


def test_an_unbound_reservation_expires_after_the_grace_period_and_a_bound_one_stays(
    scope: Scope, run_accounting: StartAccounting, namespace: str
) -> None:
    grace = 3.0
    running: RunningController = run_accounting(unbound_grace_seconds=grace)
    [node] = scope.make_nodes(1)
    wait_for("the Bandwidth", lambda: scope.bandwidth(node))
    stranded = make_pod(scope.kube, namespace, "stranded")
    late = make_pod(scope.kube, namespace, "late")
    reserved_at = datetime.now(UTC)
    reserve(scope.kube, node, stranded, 100, 100, reserved_at=reserved_at)
    reserve(scope.kube, node, late, 200, 200, reserved_at=reserved_at)
    wait_for("both held", lambda: used_network(scope, node) == {"ulMbps": 300, "dlMbps": 300})
    # reservedAt has whole seconds: the grace may be up to a second shorter than asked.
    time.sleep(grace - 1.5)
    bind_pod(scope.kube, late, node)
    wait_for(
        "the stranded one released",
        lambda: reserved_uids(scope.kube, node) == {late["metadata"]["uid"]},
        timeout=grace + 3,
    )
    elapsed = (datetime.now(UTC) - reserved_at).total_seconds()
    assert elapsed >= grace - 1.0
    time.sleep(1.0)  # well past the grace: the bound one must stay
    assert reserved_uids(scope.kube, node) == {late["metadata"]["uid"]}
    wait_for(
        "status to add up", lambda: used_network(scope, node) == {"ulMbps": 200, "dlMbps": 200}
    )
    assert (
        running.metric(
            "vaclab_accounting_stale_reservations_released_total", {"reason": "NeverBound"}
        )
        == 1.0
    )


def test_a_reservation_whose_pod_was_bound_to_another_node_is_released(
    scope: Scope, run_accounting: StartAccounting, namespace: str
) -> None:
    run_accounting()
    [first, second] = scope.make_nodes(2)
    wait_for("both Bandwidths", lambda: scope.bandwidth(first) and scope.bandwidth(second))
    pod = make_pod(
        scope.kube,
        namespace,
        "wanderer",
        annotations={
            "kubernetes.io/egress-bandwidth": "150",
            "kubernetes.io/ingress-bandwidth": "50",
        },
    )
    reserve(scope.kube, first, pod, 150, 50, reserved_at=datetime.now(UTC))
    bind_pod(scope.kube, pod, second)
    wait_for("released from the first node", lambda: not reserved_uids(scope.kube, first))
    # On the node it did land on, it is charged from its annotations.
    wait_for(
        "observed on the second node",
        lambda: used_network(scope, second) == {"ulMbps": 150, "dlMbps": 50},
    )
    entry = (scope.bandwidth(second) or {})["status"]["reservations"][0]
    assert (entry["podName"], entry["source"]) == ("wanderer", "Observed")


def test_releases_never_erase_reservations_written_at_the_same_time(
    scope: Scope, run_accounting: StartAccounting, namespace: str
) -> None:
    run_accounting()
    [node] = scope.make_nodes(1)
    wait_for("the Bandwidth", lambda: scope.bandwidth(node))
    doomed = [make_pod(scope.kube, namespace, f"doomed-{i}", node=node) for i in range(15)]
    for pod in doomed:
        reserve(scope.kube, node, pod, 1, 1, reserved_at=datetime.now(UTC))
    survivors = [make_pod(scope.kube, namespace, f"keep-{i}", node=node) for i in range(15)]
    writer_errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            for pod in survivors:
                reserve(scope.kube, node, pod, 2, 2, reserved_at=datetime.now(UTC))
        except BaseException as error:  # reported below
            writer_errors.append(error)

    writer = threading.Thread(target=scheduler)
    writer.start()
    for pod in doomed:  # each deletion makes the controller release while the writer writes
        delete_pod(scope.kube, pod)
    writer.join(timeout=30)
    assert not writer_errors
    keep = {pod["metadata"]["uid"] for pod in survivors}
    wait_for("only the survivors left", lambda: reserved_uids(scope.kube, node) == keep)
    time.sleep(0.5)
    obj = scope.bandwidth(node)
    assert obj is not None and set(parse_bandwidth(obj).reservations) == keep
    wait_for("status to add up", lambda: used_network(scope, node) == {"ulMbps": 30, "dlMbps": 30})
