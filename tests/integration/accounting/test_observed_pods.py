"""Pods placed by other schedulers are charged from their annotations; a node pushed past its
capacity says so in its status and in an Event; workloads are named through ReplicaSets."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from kubeio.resources import DEPLOYMENTS, REPLICASETS

from .conftest import (
    RunningController,
    Scope,
    StartAccounting,
    condition,
    delete_pod,
    events_about,
    make_pod,
    reserve,
    wait_for,
)

EGRESS = "kubernetes.io/egress-bandwidth"
INGRESS = "kubernetes.io/ingress-bandwidth"


def status(scope: Scope, node: str) -> dict[str, Any]:
    return (scope.bandwidth(node) or {}).get("status") or {}


def reasons_of(
    scope: Scope, node: str, kind: str = "Bandwidth", namespace: str = "default"
) -> list[str]:
    return [e["reason"] for e in events_about(scope.kube, namespace, kind, node)]


def test_pods_of_other_schedulers_are_counted_and_oversubscription_is_reported(
    scope: Scope, run_accounting: StartAccounting, namespace: str
) -> None:
    running: RunningController = run_accounting()
    [node] = scope.make_nodes(1)
    wait_for("the Bandwidth", lambda: condition(scope.bandwidth(node), "Ready"))
    ours = make_pod(scope.kube, namespace, "ours", node=node)
    reserve(scope.kube, node, ours, 400, 100, reserved_at=datetime.now(UTC))
    first = make_pod(scope.kube, namespace, "theirs-1", node=node, annotations={EGRESS: "300M"})
    wait_for(
        "700 Mbps used",
        lambda: (
            (status(scope, node).get("used") or {}).get("network") == {"ulMbps": 700, "dlMbps": 100}
        ),
    )
    assert status(scope, node)["state"] == "Ready"
    # Another scheduler, knowing nothing of our ledger, places one more.
    second = make_pod(
        scope.kube,
        namespace,
        "theirs-2",
        node=node,
        annotations={EGRESS: "0.5G", INGRESS: "20", "bandwidth.vaclab.org/link-local": "false"},
    )
    wait_for("state Oversubscribed", lambda: status(scope, node).get("state") == "Oversubscribed")
    now = status(scope, node)
    assert now["used"]["network"] == {"ulMbps": 400 + 300 + 500, "dlMbps": 120}
    assert now["remaining"]["network"] == {"ulMbps": 0, "dlMbps": 880}
    over = condition(scope.bandwidth(node), "Oversubscribed")
    assert (over["status"], over["reason"]) == ("True", "NetworkUplink")
    assert "1200 of 1000" in over["message"]
    sources = {e["podName"]: e["source"] for e in now["reservations"]}
    assert sources == {"ours": "Scheduler", "theirs-1": "Observed", "theirs-2": "Observed"}
    wait_for("an Oversubscribed warning", lambda: "Oversubscribed" in reasons_of(scope, node))
    warning = next(
        e
        for e in events_about(scope.kube, "default", "Bandwidth", node)
        if e["reason"] == "Oversubscribed"
    )
    assert warning["type"] == "Warning"
    assert warning["involvedObject"]["apiVersion"] == "networking.vaclab.org/v1"
    assert running.metric("vaclab_accounting_oversubscribed_nodes") == 1
    labels = {"node": node, "datapath": "network", "direction": "uplink"}
    assert running.metric("vaclab_accounting_used_mbps", labels) == 1200
    assert running.metric("vaclab_accounting_remaining_mbps", labels) == 0

    delete_pod(scope.kube, second)
    wait_for("Ready again", lambda: status(scope, node).get("state") == "Ready")
    wait_for("a resolution event", lambda: "OversubscriptionResolved" in reasons_of(scope, node))
    assert running.metric("vaclab_accounting_oversubscribed_nodes") == 0
    assert first  # still charged
    assert status(scope, node)["used"]["network"]["ulMbps"] == 700


def test_unparseable_annotations_charge_nothing_and_warn_once_on_the_pod(
    scope: Scope, run_accounting: StartAccounting, namespace: str
) -> None:
    run_accounting(resync_period_seconds=0.3)
    [node] = scope.make_nodes(1)
    wait_for("the Bandwidth", lambda: scope.bandwidth(node))
    make_pod(scope.kube, namespace, "odd", node=node, annotations={EGRESS: "lots"})
    make_pod(scope.kube, namespace, "fine", node=node, annotations={EGRESS: "10"})
    wait_for(
        "the fine pod charged",
        lambda: (status(scope, node).get("used") or {}).get("network", {}).get("ulMbps") == 10,
    )
    warnings = wait_for(
        "a warning on the pod",
        lambda: [
            e
            for e in events_about(scope.kube, namespace, "Pod", "odd")
            if e["reason"] == "InvalidBandwidthAnnotation"
        ],
    )
    assert "lots" in warnings[0]["message"] and EGRESS in warnings[0]["message"]
    time.sleep(1.5)  # several resyncs later: still one event, counted once
    again = [
        e
        for e in events_about(scope.kube, namespace, "Pod", "odd")
        if e["reason"] == "InvalidBandwidthAnnotation"
    ]
    assert len(again) == 1 and again[0].get("count", 1) == 1
    assert [e["podName"] for e in status(scope, node)["reservations"]] == ["fine"]


def test_a_deployments_pod_reports_the_deployment_as_its_workload(
    scope: Scope, run_accounting: StartAccounting, namespace: str
) -> None:
    run_accounting()
    [node] = scope.make_nodes(1)
    wait_for("the Bandwidth", lambda: scope.bandwidth(node))
    selector = {"matchLabels": {"app": "web"}}
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "main", "image": "registry.invalid/none:1"}]},
    }
    deployment = scope.kube.create(
        DEPLOYMENTS.path(namespace=namespace),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"replicas": 0, "selector": selector, "template": template},
        },
    )
    replicaset = scope.kube.create(
        REPLICASETS.path(namespace=namespace),
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": "web-6b7c",
                "namespace": namespace,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "web",
                        "uid": deployment["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
        },
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-6b7c",
        "uid": replicaset["metadata"]["uid"],
        "controller": True,
    }
    pod = make_pod(scope.kube, namespace, "web-6b7c-abcde", node=node, owner=owner)
    reserve(scope.kube, node, pod, 10, 10, reserved_at=datetime.now(UTC))
    lone = make_pod(
        scope.kube,
        namespace,
        "lone",
        node=node,
        owner=dict(owner, name="orphan-rs", uid="x"),
        annotations={EGRESS: "5"},
    )
    assert lone

    def workloads() -> dict[str, Any]:
        entries = status(scope, node).get("reservations") or []
        return {e["podName"]: e.get("workload") for e in entries}

    found = wait_for("both pods listed", lambda: len(workloads()) == 2 and workloads())
    assert found["web-6b7c-abcde"] == {
        "kind": "Deployment",
        "name": "web",
        "uid": deployment["metadata"]["uid"],
    }
    assert found["lone"] == {"kind": "ReplicaSet", "name": "orphan-rs", "uid": "x"}
