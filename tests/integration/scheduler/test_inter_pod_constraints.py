"""Inter-pod anti-affinity, topology spread and host ports with our scheduler running for
real: workloads of the real controllers, created in one burst, placed with their bandwidth."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kubeio.resources import DEPLOYMENTS, STATEFULSETS
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from tests.integration.scheduler.conftest import (
    create_pod,
    events_for,
    pod_body,
    pods_in,
    reserved_on,
    wait_until,
)

ZONE = "topology.kubernetes.io/zone"


def _template(app: str, scheduler_name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {"app": app},
            "annotations": {
                "kubernetes.io/egress-bandwidth": "100M",
                "kubernetes.io/ingress-bandwidth": "100M",
            },
        },
        "spec": {
            "schedulerName": scheduler_name,
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
            **spec,
        },
    }


def _by_node(kube: KubeApi, namespace: str, app: str) -> Counter[str]:
    return Counter(
        p["spec"]["nodeName"]
        for p in pods_in(kube, namespace)
        if p["metadata"]["labels"].get("app") == app and p["spec"].get("nodeName")
    )


def _failed_scheduling(kube: KubeApi, namespace: str, name: str) -> list[str]:
    return [
        e["message"] for e in events_for(kube, namespace, name) if e["reason"] == "FailedScheduling"
    ]


def test_a_burst_of_replicas_with_anti_affinity_takes_one_node_each(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(4)
    ledgers(nodes)
    run_scheduler()
    anti = {
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {"app": "relays"}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
    }
    kube.create(
        DEPLOYMENTS.path(namespace=namespace),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "relays"},
            "spec": {
                "replicas": 6,
                "selector": {"matchLabels": {"app": "relays"}},
                "template": _template("relays", scheduler_name, anti),
            },
        },
    )
    placed = wait_until(
        lambda: (p := _by_node(kube, namespace, "relays")) and sum(p.values()) == 4 and p,
        timeout=60,
        what="4 relays bound",
    )
    # Co-location would pack them; the filter keeps one per node, decided back to back.
    assert sorted(placed) == sorted(nodes) and set(placed.values()) == {1}
    pending = [
        p["metadata"]["name"]
        for p in pods_in(kube, namespace)
        if p["metadata"]["labels"].get("app") == "relays" and not p["spec"].get("nodeName")
    ]
    assert len(pending) == 2
    for name in pending:
        message = wait_until(
            lambda name=name: _failed_scheduling(kube, namespace, name),
            what=f"{name} explained",
        )[0]
        assert message == (
            "0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules."
        )
    for node in nodes:
        assert reserved_on(kube, node).network.ul_mbps == 100
    assert sum(_by_node(kube, namespace, "relays").values()) == 4


def test_a_statefulset_spreads_evenly_across_zones_with_its_bandwidth(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(6)  # two in each of zone-a, zone-b, zone-c
    ledgers(nodes)
    run_scheduler()
    spread = {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": ZONE,
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "peers"}},
            }
        ]
    }
    kube.create(
        STATEFULSETS.path(namespace=namespace),
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "peers"},
            "spec": {
                "replicas": 9,
                "podManagementPolicy": "Parallel",
                "serviceName": "peers",
                "selector": {"matchLabels": {"app": "peers"}},
                "template": _template("peers", scheduler_name, spread),
            },
        },
    )
    placed = wait_until(
        lambda: (p := _by_node(kube, namespace, "peers")) and sum(p.values()) == 9 and p,
        timeout=60,
        what="9 peers bound",
    )
    zone_of = {
        n["metadata"]["name"]: n["metadata"]["labels"][ZONE]
        for n in kube.list("/api/v1/nodes")[0]
        if n["metadata"]["name"] in nodes
    }
    per_zone = Counter()
    for node, count in placed.items():
        per_zone[zone_of[node]] += count
    assert sorted(per_zone.values()) == [3, 3, 3], per_zone
    # Within a zone co-location still packs: each zone's three share one node.
    assert sorted(placed.values()) == [3, 3, 3], placed
    assert sum(reserved_on(kube, node).network.ul_mbps for node in nodes) == 900


def test_host_ports_are_taken_one_pod_per_node_and_address(
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

    def with_port(name: str, protocol: str = "TCP") -> dict[str, Any]:
        body = pod_body(name, scheduler_name, egress="10M")
        port = {"containerPort": 8080, "hostPort": 8080, "protocol": protocol}
        body["spec"]["containers"][0]["ports"] = [port]
        return body

    def bound() -> dict[str, str]:
        return {
            p["metadata"]["name"]: p["spec"]["nodeName"]
            for p in pods_in(kube, namespace)
            if p["spec"].get("nodeName")
        }

    for name in ("a", "b", "c"):
        create_pod(kube, namespace, with_port(name))
    placed = wait_until(lambda: (b := bound()) and len(b) == 2 and b, what="two pods bound")
    assert set(placed.values()) == set(nodes)
    [waiting] = {"a", "b", "c"} - set(placed)
    message = wait_until(lambda: _failed_scheduling(kube, namespace, waiting), what="explained")[0]
    assert message == (
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    )
    # The same port number over another protocol is free.
    create_pod(kube, namespace, with_port("udp", "UDP"))
    wait_until(lambda: "udp" in bound(), what="the UDP pod bound")
    assert waiting not in bound()


def test_a_pod_waiting_for_its_affinity_is_placed_as_soon_as_the_match_is(
    kube: KubeApi,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(3)
    ledgers(nodes)
    run_scheduler()
    web = pod_body("web", scheduler_name, egress="10M", labels={"app": "web"})
    web["spec"]["affinity"] = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": ZONE}
            ]
        }
    }
    create_pod(kube, namespace, web)
    message = wait_until(lambda: _failed_scheduling(kube, namespace, "web"), what="web waits")[0]
    assert message == "0/3 nodes are available: 3 node(s) didn't match pod affinity rules."
    create_pod(kube, namespace, pod_body("db", scheduler_name, labels={"app": "db"}))
    # Not the five-minute flush: the db pod's binding wakes the web pod (backoff 1 s to 10 s).
    placed = wait_until(
        lambda: (
            (
                b := {
                    p["metadata"]["name"]: p["spec"].get("nodeName")
                    for p in pods_in(kube, namespace)
                }
            )
            and b.get("web")
            and b
        ),
        timeout=30,
        what="web bound beside db",
    )
    zone_of = {
        n["metadata"]["name"]: n["metadata"]["labels"][ZONE]
        for n in kube.list("/api/v1/nodes")[0]
        if n["metadata"]["name"] in nodes
    }
    assert zone_of[placed["web"]] == zone_of[placed["db"]]
