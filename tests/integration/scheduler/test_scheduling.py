"""The scheduler on a real apiserver: reserve then bind, never oversubscribe, explain."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bandwidth.budget import AXES
from kubeio.resources import BANDWIDTHS, PODS
from kubeio.rest import KubeApi
from tests.integration.scheduler.conftest import (
    create_pod,
    events_for,
    ledger,
    pod_body,
    pods_in,
    reserved_on,
    wait_until,
)


def _bound(kube: KubeApi, namespace: str) -> dict[str, str]:
    return {
        p["metadata"]["name"]: p["spec"]["nodeName"]
        for p in pods_in(kube, namespace)
        if p["spec"].get("nodeName")
    }


def test_one_pod_is_reserved_bound_and_explained(
    kube: KubeApi,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(2)
    ledgers(nodes)
    run_scheduler()
    pod = create_pod(kube, namespace, pod_body("p1", scheduler_name, egress="100M", ingress="1G"))

    node = wait_until(lambda: _bound(kube, namespace).get("p1"), what="p1 bound")
    entries = ledger(kube, node)["spec"]["reservations"]
    assert [(e["podUID"], e["bandwidth"]) for e in entries] == [
        (pod["metadata"]["uid"], {"ulMbps": 100, "dlMbps": 1000})
    ]
    assert entries[0]["scheduler"] == scheduler_name and entries[0]["reservedAt"]
    event = wait_until(
        lambda: [e for e in events_for(kube, namespace, "p1") if e["reason"] == "Scheduled"],
        what="Scheduled event",
    )[0]
    assert event["message"] == (
        f"Successfully assigned {namespace}/p1 to {node} (reserved 100 Mbps up / 1000 Mbps down)"
    )
    assert event["source"]["component"] == scheduler_name


def test_burst_never_oversubscribes_and_the_rest_wait_with_a_reason(
    kube: KubeApi,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(10)
    ledgers(nodes, network=(1000, 2000), local=(1500, 20000))
    run_scheduler()
    # 300 pods of 100 Mbps up: 10 fit per node by the NIC uplink, so 100 of 300 can be bound.
    for index in range(300):
        create_pod(
            kube, namespace, pod_body(f"p{index:03d}", scheduler_name, egress="100M", ingress="50M")
        )

    wait_until(lambda: len(_bound(kube, namespace)) >= 100, timeout=90, what="100 pods bound")
    for node in nodes:
        used = reserved_on(kube, node)
        capacity = {"local": (1500, 20000), "network": (1000, 2000)}
        for axis in AXES:
            limit = capacity[axis.datapath.value][0 if axis.direction.value == "uplink" else 1]
            assert used.on(axis) <= limit, (node, str(axis), used)
    bound = _bound(kube, namespace)
    assert len(bound) == 100
    assert Counter(bound.values()) == {node: 10 for node in nodes}

    def pending_explained() -> list[dict[str, Any]]:
        pending = [p for p in pods_in(kube, namespace) if not p["spec"].get("nodeName")]
        explained = [
            p
            for p in pending
            if any(
                c.get("type") == "PodScheduled" and c.get("status") == "False"
                for c in p["status"].get("conditions") or []
            )
        ]
        return explained if len(explained) == 200 else []

    sample = wait_until(pending_explained, timeout=60, what="200 pending pods explained")[0]
    message = next(
        c["message"] for c in sample["status"]["conditions"] if c["type"] == "PodScheduled"
    )
    assert (
        message
        == "0/10 nodes are available: 10 insufficient network uplink bandwidth (need 100 Mbps)."
    )


def test_two_schedulers_racing_do_not_oversubscribe(
    kube: KubeApi,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(3)
    ledgers(nodes, network=(1000, 1000))
    first, second = run_scheduler(), run_scheduler()
    for index in range(60):
        create_pod(
            kube,
            namespace,
            pod_body(f"r{index:02d}", scheduler_name, egress="100M", ingress="100M"),
        )

    wait_until(lambda: len(_bound(kube, namespace)) >= 30, timeout=90, what="30 pods bound")
    for node in nodes:
        used = reserved_on(kube, node)
        assert used.network.ul_mbps <= 1000 and used.network.dl_mbps <= 1000
        uids = [e["podUID"] for e in ledger(kube, node)["spec"]["reservations"]]
        assert len(uids) == len(set(uids)) == 10
    assert len(_bound(kube, namespace)) == 30
    conflicts = [s.metrics.reservation_conflicts._value.get() for s in (first, second)]
    assert sum(conflicts) >= 0


def test_pod_deleted_between_reserve_and_bind_leaves_no_reservation(
    kube: KubeApi,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    (node,) = simulated_nodes(1)
    ledgers([node])
    scheduler = run_scheduler()
    binder = scheduler.binder
    original_bind = binder._bind

    def delete_then_bind(ctx: Any, target: str, *rest: Any) -> None:
        # The reservation is written by now; the pod disappears before the binding.
        assert ctx.pod.uid in [e["podUID"] for e in ledger(kube, target)["spec"]["reservations"]]
        kube.delete(PODS.path(namespace=namespace, name=ctx.pod.name))
        original_bind(ctx, target, *rest)

    binder._bind = delete_then_bind  # type: ignore[method-assign]
    create_pod(kube, namespace, pod_body("doomed", scheduler_name, egress="10M"))

    wait_until(lambda: not pods_in(kube, namespace), what="pod deleted")
    wait_until(lambda: ledger(kube, node)["spec"]["reservations"] == [], what="reservation removed")


def test_bad_annotations_warn_and_never_bind(
    kube: KubeApi,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(2)
    ledgers(nodes)
    run_scheduler()
    bad = {"fast": "fast", "negative": "-5M", "dots": "1.5.3", "empty": ""}
    for name, value in bad.items():
        create_pod(kube, namespace, pod_body(name, scheduler_name, egress=value))
    create_pod(kube, namespace, pod_body("good", scheduler_name, egress="5M"))

    wait_until(lambda: "good" in _bound(kube, namespace), what="good pod bound")
    for name, value in bad.items():
        warning = wait_until(
            lambda name=name: [
                e
                for e in events_for(kube, namespace, name)
                if e["reason"] == "InvalidBandwidthRequest"
            ],
            what=f"warning on {name}",
        )[0]
        assert warning["type"] == "Warning"
        assert f"kubernetes.io/egress-bandwidth={value!r}" in warning["message"]
    assert set(_bound(kube, namespace)) == {"good"}
    for node in nodes:
        assert {e["podName"] for e in ledger(kube, node)["spec"]["reservations"]} <= {"good"}


def test_standard_predicates_explain_each_node(
    kube: KubeApi,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    tainted = simulated_nodes(
        2, taints=[{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]
    )
    labelled = simulated_nodes(1, labels={"disk": "ssd"}, cpu="1")
    ledgers(tainted + labelled)
    run_scheduler()
    create_pod(
        kube,
        namespace,
        pod_body(
            "picky",
            scheduler_name,
            egress="10M",
            cpu="2",
            extra_spec={"nodeSelector": {"disk": "ssd"}},
        ),
    )
    create_pod(
        kube,
        namespace,
        pod_body(
            "tolerant",
            scheduler_name,
            egress="10M",
            extra_spec={
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra"}]
            },
        ),
    )
    create_pod(
        kube,
        namespace,
        pod_body(
            "claims",
            scheduler_name,
            extra_spec={"resourceClaims": [{"name": "gpu", "resourceClaimName": "gpu-claim"}]},
        ),
    )
    assert (
        wait_until(lambda: _bound(kube, namespace).get("tolerant"), what="tolerant bound")
        in tainted
    )
    picky = wait_until(
        lambda: [
            e for e in events_for(kube, namespace, "picky") if e["reason"] == "FailedScheduling"
        ],
        what="picky explained",
    )[0]
    assert picky["message"] == (
        "0/3 nodes are available: 2 node(s) had untolerated taint {dedicated: infra}, "
        "1 Insufficient cpu."
    )
    claims = wait_until(
        lambda: [
            e
            for e in events_for(kube, namespace, "claims")
            if e["reason"] == "UnsupportedConstraint"
        ],
        what="resource claims reported",
    )[0]
    assert "resource claims (DRA allocation)" in claims["message"]
    assert "picky" not in _bound(kube, namespace) and "claims" not in _bound(kube, namespace)
    assert kube.get(BANDWIDTHS.path(name=labelled[0]))["spec"]["reservations"] == []
