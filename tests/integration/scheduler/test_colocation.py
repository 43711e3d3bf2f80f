"""Siblings of a StatefulSet and of a Deployment (real controllers) co-locate, then spill."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kubeio.resources import DEPLOYMENTS, STATEFULSETS
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from tests.integration.scheduler.conftest import pods_in, wait_until


def _template(app: str, scheduler_name: str, egress: str) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {"app": app},
            "annotations": {
                "kubernetes.io/egress-bandwidth": egress,
                "kubernetes.io/ingress-bandwidth": egress,
            },
        },
        "spec": {
            "schedulerName": scheduler_name,
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
        },
    }


def _placement(kube: KubeApi, namespace: str, app: str) -> Counter[str]:
    return Counter(
        p["spec"]["nodeName"]
        for p in pods_in(kube, namespace)
        if p["metadata"]["labels"].get("app") == app and p["spec"].get("nodeName")
    )


def test_workload_siblings_share_a_node_until_it_is_full(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
) -> None:
    nodes = simulated_nodes(4)
    ledgers(nodes, network=(1000, 1000))  # ten 100 Mbps pods per node
    run_scheduler()
    kube.create(
        STATEFULSETS.path(namespace=namespace),
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "peers"},
            "spec": {
                "replicas": 6,
                "podManagementPolicy": "Parallel",
                "serviceName": "peers",
                "selector": {"matchLabels": {"app": "peers"}},
                "template": _template("peers", scheduler_name, "100M"),
            },
        },
    )
    statefulset = wait_until(
        lambda: (p := _placement(kube, namespace, "peers")) and sum(p.values()) == 6 and p,
        timeout=60,
        what="6 StatefulSet pods bound",
    )
    assert len(statefulset) == 1, statefulset

    kube.create(
        DEPLOYMENTS.path(namespace=namespace),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "relays"},
            "spec": {
                "replicas": 15,
                "selector": {"matchLabels": {"app": "relays"}},
                "template": _template("relays", scheduler_name, "100M"),
            },
        },
    )
    deployment = wait_until(
        lambda: (p := _placement(kube, namespace, "relays")) and sum(p.values()) == 15 and p,
        timeout=60,
        what="15 Deployment pods bound",
    )
    # Ten fill an empty node; the five that spill stay together on the next best node,
    # not beside the StatefulSet, whose node has room for only four.
    assert sorted(deployment.values()) == [5, 10], deployment
    assert not set(deployment) & set(statefulset)
