"""``kubectl bandwidth`` says what the scheduler then does, on the real control plane.

For each manifest the plugin is asked first (``what-if -o json``); then the object is created
and the running scheduler acts. Every pod must end as the plugin said: bound to the node it
named, or left Pending with the Event reason and message it gave (an invalid request, a
constraint not evaluated, no node with room). The cases include constraints other work adds
support for (volume claims, inter-pod anti-affinity, host ports): whatever the scheduler does
with them, the plugin must say the same.

A workload that already runs is scaled by ``what-if``: its pods stay where they are, the new
StatefulSet ordinals go to the nodes the scheduler then puts them on.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from kubeio.errors import NotFound
from kubeio.resources import PODS, STATEFULSETS
from kubeio.rest import MERGE_PATCH, KubeApi
from localcluster import ControlPlane
from scheduler.verdict import INVALID_REQUEST, UNSCHEDULABLE, UNSUPPORTED_CONSTRAINT
from tests.integration.kubectl_bandwidth.conftest import Kubectl
from tests.integration.scheduler.conftest import events_for, wait_until

JSON = dict[str, Any]
VERDICT_REASONS = (INVALID_REQUEST, UNSUPPORTED_CONSTRAINT, UNSCHEDULABLE)
Outcome = tuple[str | None, str, str]  # node, or (None, Event reason, message)


def template(scheduler_name: str, egress: str = "200M", **spec: Any) -> JSON:
    return {
        "metadata": {
            "labels": {"app": "parity"},
            "annotations": {
                "kubernetes.io/egress-bandwidth": egress,
                "kubernetes.io/ingress-bandwidth": egress,
            },
        },
        "spec": {
            "schedulerName": scheduler_name,
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
            **spec,
        },
    }


def pod(name: str, scheduler_name: str, egress: str = "200M", **spec: Any) -> JSON:
    body = template(scheduler_name, egress, **spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **body["metadata"]},
            "spec": body["spec"]}  # fmt: skip


def statefulset(name: str, scheduler_name: str, replicas: int, **extra: Any) -> JSON:
    body = template(scheduler_name)
    body["metadata"]["labels"] = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            # Simulated nodes run no kubelet: an OrderedReady set would stop at ordinal 0.
            "podManagementPolicy": "Parallel",
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": body,
            **extra,
        },
    }


def plugin_says(
    kubectl: Kubectl, tmp_path: Path, namespace: str, manifest: JSON, *args: str
) -> dict[str, Outcome]:
    path = tmp_path / f"{manifest['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    run = kubectl("what-if", "-f", str(path), "-n", namespace, "-o", "json", *args)
    assert run.code == 0, run.err
    return {
        p["pod"]: (p["node"], p["reason"] or "", p["message"] or "")
        for p in json.loads(run.out)["placements"]
    }


def scheduler_did(kube: KubeApi, namespace: str, name: str) -> Outcome:
    """Once the scheduler acted on the pod: its node, or its last verdict Event."""

    def acted() -> Outcome | None:
        try:
            current = kube.get(PODS.path(namespace=namespace, name=name))
        except NotFound:  # its controller has not created it yet
            return None
        if current["spec"].get("nodeName"):
            return (current["spec"]["nodeName"], "", "")
        said = [e for e in events_for(kube, namespace, name) if e.get("reason") in VERDICT_REASONS]
        if said:
            last = max(said, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
            return (None, str(last["reason"]), str(last["message"]))
        return None

    outcome: Outcome = wait_until(acted, timeout=60, what=f"the scheduler to act on {name}")
    # A verdict may be overtaken: a StatefulSet's pod can reach the scheduler before its
    # claim does ("not found"), and the claim's arrival retries it. Take the verdict once it
    # has stood for a while.
    deadline = time.monotonic() + 30
    while outcome[0] is None and time.monotonic() < deadline:
        time.sleep(2)
        again = acted()
        if again == outcome:
            break
        assert again is not None
        outcome = again
    return outcome


def test_what_if_and_the_scheduler_agree_on_every_pod(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
    kubectl: Kubectl,
    tmp_path: Path,
) -> None:
    nodes = simulated_nodes(3)
    ledgers(nodes[:2], network=(1000, 1000))
    run_scheduler()
    anti = {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "parity"}},
             "topologyKey": "kubernetes.io/hostname"}
        ]
    }  # fmt: skip
    cases: list[JSON] = [
        statefulset("fits", scheduler_name, 3),
        pod("too-big", scheduler_name, egress="5G"),
        pod("fast", scheduler_name, egress="fast"),
        statefulset(
            "claims",
            scheduler_name,
            2,
            volumeClaimTemplates=[
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        ),
        pod("apart", scheduler_name, affinity={"podAntiAffinity": anti}),
        pod(
            "ports",
            scheduler_name,
            containers=[
                {
                    "name": "app",
                    "image": "registry.k8s.io/pause:3.10",
                    "ports": [{"containerPort": 80, "hostPort": 8080}],
                }
            ],
        ),
    ]
    seen: dict[str, tuple[Outcome, Outcome]] = {}
    for manifest in cases:
        said = plugin_says(kubectl, tmp_path, namespace, manifest)
        if manifest["kind"] == "Pod":
            kube.create(PODS.path(namespace=namespace), manifest)
        else:
            kube.create(STATEFULSETS.path(namespace=namespace), manifest)
        for name, predicted in said.items():
            seen[name] = (predicted, scheduler_did(kube, namespace, name))
    print(json.dumps({name: list(pair) for name, pair in seen.items()}, indent=1))
    assert {name: did for name, (_, did) in seen.items()} == {
        name: said for name, (said, _) in seen.items()
    }
    # The cases cover every way the scheduler answers today.
    outcomes = {did[1] if did[0] is None else "bound" for _, did in seen.values()}
    assert {"bound", UNSCHEDULABLE, INVALID_REQUEST} <= outcomes

    explained = kubectl("explain", "fast", "-n", namespace)
    assert explained.code == 0, explained.err
    why = seen["fast"][1][2]
    assert why.startswith("annotation kubernetes.io/egress-bandwidth='fast' is invalid: ")
    assert f"Request:        invalid: {why}" in explained.lines
    assert f"Scheduler said: {why}" in explained.lines
    assert (
        f"Now:            refused before any node is considered ({INVALID_REQUEST}): {why}"
        in explained.lines
    )


def test_what_if_of_a_running_statefulset_scales_it_where_the_scheduler_then_does(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
    kubectl: Kubectl,
    tmp_path: Path,
) -> None:
    nodes = simulated_nodes(2)
    ledgers(nodes, network=(1000, 1000))  # 5 pods of 200 Mbps per node
    run_scheduler()
    manifest = statefulset("peers", scheduler_name, 4)
    kube.create(STATEFULSETS.path(namespace=namespace), manifest)
    running = {f"peers-{i}": scheduler_did(kube, namespace, f"peers-{i}")[0] for i in range(4)}
    assert None not in running.values()

    said = plugin_says(kubectl, tmp_path, namespace, manifest, "--replicas", "8")
    assert set(said) == {f"peers-{i}" for i in range(4, 8)}  # ordinals continue
    assert all(node is not None for node, _, _ in said.values())
    kube.patch(STATEFULSETS.path(namespace=namespace, name="peers"), {"spec": {"replicas": 8}},
               MERGE_PATCH)  # fmt: skip
    did = {name: scheduler_did(kube, namespace, name) for name in said}
    # Parallel pods reach the queue in any order: which ordinal gets which node may differ,
    # how many go to each node may not.
    assert Counter(node for node, _, _ in did.values()) == Counter(
        node for node, _, _ in said.values()
    )
    for name, node in running.items():  # nothing moved
        assert kube.get(PODS.path(namespace=namespace, name=name))["spec"]["nodeName"] == node

    beyond = plugin_says(kubectl, tmp_path, namespace, manifest, "--replicas", "12")
    assert set(beyond) == {f"peers-{i}" for i in range(8, 12)}
    assert sum(1 for node, _, _ in beyond.values() if node is None) == 2  # 10 fit in all
    text = kubectl(
        "what-if", "-f", str(tmp_path / "peers.yaml"), "-n", namespace, "--replicas", "12"
    )
    assert text.lines[1] == "Running: 8 bound, 0 pending; simulated: 4 new replica(s)."
