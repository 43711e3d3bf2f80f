"""One benchmark run of one contender: fresh control plane, nodes, workload, measurements."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bandwidth.quantity import parse_mbps
from bench.contenders import SCHEDULER_NAMES, VACLAB, make
from bench.workload import (
    EGRESS_RESOURCE,
    INGRESS_RESOURCE,
    NIC_CHOICES_MBPS,
    PodSpec,
    Preset,
    node_capacity,
    pod_object,
    workload,
)
from kubeio.config import load_client_configuration
from kubeio.resources import BANDWIDTHS, DEPLOYMENTS, NAMESPACES, PODS, REPLICASETS, STATEFULSETS
from kubeio.rest import KubeApi
from kubeio.watchcache import WatchCache
from localcluster.controlplane import ControlPlane
from localcluster.crds import install_crds
from localcluster.nodes import create_simulated_nodes

NAMESPACE = "bench"
CAPACITY_LABEL = "bandwidth.vaclab.org/network-{}-mbps"
Progress = Callable[[int, int], None]


@dataclass
class RunResult:
    contender: str
    arrival: str
    nodes: int
    pods: int
    bound: int
    seconds: float
    throughput_pods_per_second: float
    latency_p50_s: float
    latency_p90_s: float
    latency_p99_s: float
    oversubscribed_nodes: int
    api_requests_per_pod: float
    scheduler_cpu_seconds: float
    scheduler_peak_rss_mib: float
    detail: dict[str, Any] = field(default_factory=dict)
    bound_over_time: list[tuple[float, int]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _create_nodes(cp: ControlPlane, count: int) -> dict[str, int]:
    """Nodes in groups by NIC; the NIC is both a label (for us) and an extended resource."""
    nic_of: dict[str, int] = {}
    by_nic: dict[int, list[int]] = defaultdict(list)
    for index in range(count):
        by_nic[node_capacity(index).network.ul_mbps].append(index)
    with cp.api_client() as client:
        for nic in NIC_CHOICES_MBPS:
            indexes = by_nic.get(nic, [])
            if not indexes:
                continue
            names = create_simulated_nodes(
                client,
                len(indexes),
                name_prefix=f"bench-{nic}",
                cpu="64",
                memory="256Gi",
                labels={
                    CAPACITY_LABEL.format("ul"): str(nic),
                    CAPACITY_LABEL.format("dl"): str(nic),
                },
                extended_resources={EGRESS_RESOURCE: str(nic), INGRESS_RESOURCE: str(nic)},
                workers=32,
            )
            nic_of.update(dict.fromkeys(names, nic))
    return nic_of


def _owners(api: KubeApi, specs: list[PodSpec]) -> dict[str, list[dict[str, Any]]]:
    """StatefulSets and Deployments (with a ReplicaSet) that own the pods; no controller runs."""
    owners: dict[str, list[dict[str, Any]]] = {}
    groups = {(s.group, s.group_kind, s.group_size) for s in specs if s.group}
    for group, kind, size in sorted(groups):
        template = {
            "metadata": {"labels": {"app": group}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        }
        selector = {"matchLabels": {"app": group}}
        if kind == "StatefulSet":
            created = api.create(
                STATEFULSETS.path(namespace=NAMESPACE),
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "metadata": {"name": group},
                    "spec": {
                        "replicas": size,
                        "serviceName": group,
                        "selector": selector,
                        "template": template,
                    },
                },
            )
            owners[group] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": group,
                    "uid": created["metadata"]["uid"],
                    "controller": True,
                }
            ]
        else:
            deployment = api.create(
                DEPLOYMENTS.path(namespace=NAMESPACE),
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": group},
                    "spec": {"replicas": size, "selector": selector, "template": template},
                },
            )
            replicaset = api.create(
                REPLICASETS.path(namespace=NAMESPACE),
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": f"{group}-5c9f7d8b6",
                        "ownerReferences": [
                            {
                                "apiVersion": "apps/v1",
                                "kind": "Deployment",
                                "name": group,
                                "uid": deployment["metadata"]["uid"],
                                "controller": True,
                            }
                        ],
                    },
                    "spec": {"replicas": size, "selector": selector, "template": template},
                },
            )
            owners[group] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{group}-5c9f7d8b6",
                    "uid": replicaset["metadata"]["uid"],
                    "controller": True,
                }
            ]
    return owners


def _oversubscribed(
    nic_of: dict[str, int], specs: dict[str, PodSpec], bound: dict[str, str]
) -> int:
    used: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, node in bound.items():
        spec = specs[name]
        used[node][0] += parse_mbps(spec.egress)
        used[node][1] += parse_mbps(spec.ingress)
    return sum(1 for node, (up, down) in used.items() if up > nic_of[node] or down > nic_of[node])


def run_once(
    contender_name: str,
    preset: Preset,
    arrival: str,
    rate: float,
    work_dir: Path,
    progress: Progress,
    timeout: float = 600.0,
) -> RunResult:
    work_dir = work_dir.resolve()  # components run with the control plane's directory as cwd
    work_dir.mkdir(parents=True, exist_ok=True)
    contender = make(contender_name)
    specs = workload(preset.pods)
    by_name = {s.name: s for s in specs}
    with ControlPlane() as cp:
        with cp.api_client() as client:
            install_crds(client)
        nic_of = _create_nodes(cp, preset.nodes)
        api = KubeApi(load_client_configuration(str(cp.kubeconfig_path), pool_size=64))
        api.create(NAMESPACES.path(), {"metadata": {"name": NAMESPACE}})
        api.create(
            f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts", {"metadata": {"name": "default"}}
        )
        owners = _owners(api, specs)
        contender.start(cp, work_dir)
        if contender_name == VACLAB:
            _wait(
                lambda: len(api.list(BANDWIDTHS.path())[0]) >= preset.nodes,
                120,
                "Bandwidth objects",
            )
        time.sleep(2)  # let the contender's caches settle before measuring
        contender.mark()

        created_at: dict[str, float] = {}
        bound_at: dict[str, float] = {}
        bound_node: dict[str, str] = {}
        lock = threading.Lock()

        def on_pod(kind: str, old: Any, new: Any) -> None:
            if new is None or not new["spec"].get("nodeName"):
                return
            name = new["metadata"]["name"]
            with lock:
                if name not in bound_at:
                    bound_at[name] = time.monotonic()
                    bound_node[name] = new["spec"]["nodeName"]

        watcher = WatchCache(api, PODS, label_selector="bench=1")
        watcher.add_handler(on_pod)
        watcher.start()
        watcher.wait_synced(30)
        extended = contender_name == "kube"
        bodies = []
        for spec in specs:
            body = pod_object(
                spec,
                scheduler_name=SCHEDULER_NAMES[contender_name],
                namespace=NAMESPACE,
                as_extended_resources=extended,
            )
            if spec.group:
                body["metadata"]["ownerReferences"] = owners[spec.group]
                if owners[spec.group][0]["kind"] == "ReplicaSet":
                    body["metadata"]["labels"]["pod-template-hash"] = "5c9f7d8b6"
            bodies.append(body)
        started = time.monotonic()

        def create(body: dict[str, Any]) -> None:
            api.create(PODS.path(namespace=NAMESPACE), body)
            with lock:
                created_at[body["metadata"]["name"]] = time.monotonic()

        with ThreadPoolExecutor(32) as pool:
            if arrival == "burst":
                list(pool.map(create, bodies))
            else:
                for index, body in enumerate(bodies):
                    delay = started + index / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(create, body)
        last_count, last_change = -1, time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            with lock:
                count = len(bound_at)
            progress(count, len(specs))
            if count >= len(specs):
                break
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > 30:
                break  # no progress: the rest cannot be placed
            time.sleep(0.25)
        usage = contender.usage()
        watcher.stop()
        contender.stop()
        api.close()
    latencies = [bound_at[n] - created_at[n] for n in bound_at if n in created_at]
    finished = max(bound_at.values(), default=started)
    seconds = max(1e-9, finished - started)
    timeline = sorted(t - started for t in bound_at.values())
    step = max(1, len(timeline) // 200)
    return RunResult(
        contender=contender_name,
        arrival=arrival,
        nodes=preset.nodes,
        pods=len(specs),
        bound=len(bound_at),
        seconds=round(seconds, 3),
        throughput_pods_per_second=round(len(bound_at) / seconds, 1),
        latency_p50_s=round(_percentile(latencies, 0.50), 3),
        latency_p90_s=round(_percentile(latencies, 0.90), 3),
        latency_p99_s=round(_percentile(latencies, 0.99), 3),
        oversubscribed_nodes=_oversubscribed(nic_of, by_name, bound_node),
        api_requests_per_pod=round(usage.api_requests / max(1, len(bound_at)), 2),
        scheduler_cpu_seconds=round(usage.cpu_seconds, 2),
        scheduler_peak_rss_mib=round(usage.peak_rss_mib, 1),
        detail=usage.detail,
        bound_over_time=[(round(t, 3), i + 1) for i, t in enumerate(timeline)][::step],
    )


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)
