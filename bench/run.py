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

from bandwidth.budget import Usage
from bandwidth.quantity import parse_mbps
from bandwidth.request import BandwidthRequest
from bench import quality
from bench.contenders import VACLAB, Vaclab, make
from bench.measure import cpu_seconds
from bench.profile import Recording
from bench.workload import (
    EGRESS_RESOURCE,
    INGRESS_RESOURCE,
    NIC_CHOICES_MBPS,
    PodSpec,
    Preset,
    capacity_with_nic,
    node_capacity,
    workload,
)
from kubeio.config import load_client_configuration
from kubeio.resources import (
    BANDWIDTHS,
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    STATEFULSETS,
)
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
    nodes_per_workload: float
    """Mean count of nodes a StatefulSet's or Deployment's pods landed on: low is siblings
    packed together, high is siblings spread."""
    api_requests_per_pod: float
    scheduler_cpu_seconds: float
    scheduler_peak_rss_mib: float
    scheduler_cpu_ms_per_pod: float
    """The scheduler process's CPU over the pods bound (companions apart, as above)."""
    apiserver_cpu_ms_per_pod: float
    """kube-apiserver's and etcd's CPU over the measured window, per pod bound: the other half
    of a 2-core machine. It includes the harness's pod creations and watch, the same for all."""
    api_request_kib_per_pod: float
    """Bytes the contender's processes sent the apiserver (TLS, on the wire), per pod bound."""
    api_response_kib_per_pod: float
    """Bytes they received from it: responses and watch events."""
    fewest_nodes_per_workload: float
    """Mean of the fewest nodes that could hold each workload's bound pods (bench.quality)."""
    span_over_fewest: float
    """Mean over workloads of nodes spanned / fewest nodes: 1.0 is as packed as can be."""
    excess_nodes: int
    """Nodes spanned beyond the fewest, summed over the workloads."""
    sibling_pairs_together: float | None
    """Share of pairs of pods of one workload that sit on one node."""
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
        if spec.link_local:
            continue  # the NIC is spared
        used[node][0] += parse_mbps(spec.egress)
        used[node][1] += parse_mbps(spec.ingress)
    return sum(1 for node, (up, down) in used.items() if up > nic_of[node] or down > nic_of[node])


def _demand(spec: PodSpec) -> quality.Vector:
    """What one pod asks of a node: the four bandwidth axes and one pod."""
    charge = BandwidthRequest(
        parse_mbps(spec.egress), parse_mbps(spec.ingress), spec.link_local
    ).charge()
    return (*charge.as_tuple(), 1)


def _final_placements(api: KubeApi) -> tuple[dict[str, str], dict[str, int]]:
    """The bench pods' nodes and every node's allocatable pod count, read from the API."""
    pods, _ = api.list(PODS.path(namespace=NAMESPACE), {"labelSelector": "bench=1"})
    nodes, _ = api.list(NODES.path())
    return (
        {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName")},
        {
            n["metadata"]["name"]: int(n["status"].get("allocatable", {}).get("pods", "110"))
            for n in nodes
        },
    )


def _placement_quality(
    specs: dict[str, PodSpec],
    placed: dict[str, str],
    capacities: dict[str, Usage],
    pod_slots: dict[str, int],
) -> tuple[quality.Quality, list[quality.WorkloadPlacement]]:
    vectors = {
        node: (*capacity.as_tuple(), pod_slots.get(node, 110))
        for node, capacity in capacities.items()
    }
    pods = [
        (specs[name].group, node, _demand(specs[name]))
        for name, node in placed.items()
        if name in specs and specs[name].group
    ]
    return quality.quality(pods, vectors)


def run_once(
    contender_name: str,
    preset: Preset,
    arrival: str,
    rate: float,
    work_dir: Path,
    progress: Progress,
    timeout: float = 600.0,
    profile_dir: Path | None = None,
) -> RunResult:
    """``profile_dir``: record contender A's scheduler with py-spy there (``bench.profile``)."""
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
        capacities = {node: capacity_with_nic(nic) for node, nic in nic_of.items()}
        contender.start(cp, work_dir)
        contender.prepare(api, capacities, specs, NAMESPACE)
        if contender_name == VACLAB:
            # Every node's Bandwidth made and its first status written: that start-up work
            # (two writes per node) must not share the apiserver with the measured pods.
            _wait(lambda: _ledgers_reported(api) >= preset.nodes, 300, "Bandwidth statuses")
        time.sleep(2)  # let the contender's caches settle before measuring
        contender.mark()
        server_pids = [pid for name, pid in cp.pids().items() if name in ("kube-apiserver", "etcd")]
        server_cpu_before = sum(cpu_seconds(pid) for pid in server_pids)
        recording = None
        if profile_dir is not None and isinstance(contender, Vaclab):
            recording = Recording(contender.scheduler_pid(), profile_dir)

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
        bodies = []
        for spec in specs:
            body = contender.pod_object(spec, NAMESPACE)
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
        if recording is not None:
            recording.stop()
        usage = contender.usage()
        server_cpu = sum(cpu_seconds(pid) for pid in server_pids) - server_cpu_before
        watcher.stop()
        placed, pod_slots = _final_placements(api)
        audit = contender.audit(api, capacities)
        contender.stop()
        api.close()
    by_pods = _oversubscribed(nic_of, by_name, bound_node)
    summary, placements = _placement_quality(by_name, placed, capacities, pod_slots)
    detail = dict(usage.detail)
    detail["placements"] = [
        {"workload": p.workload, "pods": p.pods, "span": p.span, "fewest": p.fewest}
        for p in placements
    ]
    if audit is not None:
        detail.update(audit.detail, oversubscribed_by_bound_pods=by_pods)
    latencies = [bound_at[n] - created_at[n] for n in bound_at if n in created_at]
    if latencies:
        detail["latency_mean_s"] = round(sum(latencies) / len(latencies), 6)
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
        oversubscribed_nodes=by_pods if audit is None else audit.oversubscribed_nodes,
        nodes_per_workload=summary.span_mean,
        api_requests_per_pod=round(usage.api_requests / max(1, len(bound_at)), 2),
        scheduler_cpu_seconds=round(usage.cpu_seconds, 2),
        scheduler_peak_rss_mib=round(usage.peak_rss_mib, 1),
        scheduler_cpu_ms_per_pod=round(1000 * usage.cpu_seconds / max(1, len(bound_at)), 2),
        apiserver_cpu_ms_per_pod=round(1000 * server_cpu / max(1, len(bound_at)), 2),
        api_request_kib_per_pod=round(usage.bytes_sent / 1024 / max(1, len(bound_at)), 2),
        api_response_kib_per_pod=round(usage.bytes_received / 1024 / max(1, len(bound_at)), 2),
        fewest_nodes_per_workload=summary.fewest_mean,
        span_over_fewest=summary.span_over_fewest_mean,
        excess_nodes=summary.excess_nodes,
        sibling_pairs_together=None
        if summary.sibling_pairs_together is None
        else round(summary.sibling_pairs_together, 3),
        detail=detail,
        bound_over_time=[(round(t, 3), i + 1) for i, t in enumerate(timeline)][::step],
    )


def _ledgers_reported(api: KubeApi) -> int:
    """Bandwidth objects whose status the accounting controller has written."""
    ledgers, _ = api.list(BANDWIDTHS.path())
    return sum(1 for ledger in ledgers if (ledger.get("status") or {}).get("state"))


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)
