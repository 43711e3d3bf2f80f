"""Contender D: kube-scheduler with DRA consumable capacity (KEP-5075), the in-tree way.

The same nodes and pods as the other contenders. Each node gets a ResourceSlice of the
simulated bandwidth driver (``localcluster.dra``): a ``nic`` device (the NIC, uplink and
downlink) and a ``vswitch`` device (the virtual switch), both shared between claims. One
DeviceClass; one ResourceClaimTemplate per workload (per request size for bare pods); each pod
names its template, kube-controller-manager — running only its ``resourceclaim-controller`` —
makes the pod's claim from it, and kube-scheduler allocates the claim and binds the pod.

Measured apart, as each is a process of its own: kube-scheduler (the contender's scheduler
CPU, RSS and requests) and the controller-manager (the claims' creation). Claims are extra
objects: kube-apiserver's own request counters say how many were created and how often they
and their status were written. The audit sums the ``consumedCapacity`` of every allocated
claim per node (``bandwidth.dra``) and compares it with the node's capacity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bandwidth import budget
from bandwidth.dra import holdings_of
from bandwidth.ledger import overcommitted_axes
from bandwidth.quantity import parse_mbps
from bench import measure
from bench.contenders import DRA, SCHEDULER_NAMES, Audit, KubeScheduler, Usage
from bench.workload import PodSpec, pod_object
from kubeio.rest import KubeApi
from localcluster import dra
from localcluster.controlplane import ControlPlane

CLAIM_CONTROLLER = "resourceclaim-controller"
_API = "/apis/resource.k8s.io/v1"

# kube-apiserver's request counter: (verb, resource, subresource) → what it counts here.
_COUNTED = {
    ("POST", "resourceclaims", ""): "claims_created",
    ("PUT", "resourceclaims", ""): "claim_writes",
    ("PATCH", "resourceclaims", ""): "claim_writes",
    ("PUT", "resourceclaims", "status"): "claim_status_writes",
    ("PATCH", "resourceclaims", "status"): "claim_status_writes",
    ("APPLY", "resourceclaims", "status"): "claim_status_writes",
    ("PUT", "pods", "status"): "pod_status_writes",
    ("PATCH", "pods", "status"): "pod_status_writes",
    ("APPLY", "pods", "status"): "pod_status_writes",
    ("POST", "pods", "binding"): "bindings",
}


def template_name(spec: PodSpec) -> str:
    """One template per workload; bare pods share one per request size."""
    if spec.group:
        return f"{spec.group}-bandwidth"
    scope = "-link-local" if spec.link_local else ""
    return f"bare-{parse_mbps(spec.egress)}-{parse_mbps(spec.ingress)}{scope}"


def claim_templates(specs: Sequence[PodSpec], namespace: str) -> list[dict[str, Any]]:
    """The ResourceClaimTemplates the pods of ``specs`` name, one per ``template_name``."""
    templates: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name = template_name(spec)
        if name not in templates:
            templates[name] = dra.claim_template(
                name,
                namespace,
                ul_mbps=parse_mbps(spec.egress),
                dl_mbps=parse_mbps(spec.ingress),
                link_local=spec.link_local,
            )
    return list(templates.values())


def dra_pod_object(spec: PodSpec, namespace: str) -> dict[str, Any]:
    """The pod asking for its bandwidth through its workload's claim template only."""
    pod = pod_object(spec, scheduler_name=SCHEDULER_NAMES[DRA], namespace=namespace, annotate=False)
    return dra.with_claim(pod, template_name(spec))


def audit_claims(
    claims: Sequence[Mapping[str, Any]],
    slices: Sequence[Mapping[str, Any]],
    capacities: Mapping[str, budget.Usage],
) -> Audit:
    """Nodes where the claims' consumed capacity exceeds the node's capacity on some axis."""
    holdings = holdings_of(claims, slices, dra.SHARING)
    over = sorted(
        node
        for node, holding in holdings.items()
        if node in capacities and overcommitted_axes(capacities[node], holding.usage)
    )
    allocated = sum(1 for claim in claims if (claim.get("status") or {}).get("allocation"))
    return Audit(
        oversubscribed_nodes=len(over),
        detail={
            "claims": len(claims),
            "claims_allocated": allocated,
            "nodes_holding_claims": len(holdings),
            "oversubscribed_by_claims": over[:20],
        },
    )


class KubeSchedulerDra(KubeScheduler):
    """kube-scheduler as for B, plus kube-controller-manager's claim controller; see above."""

    name = DRA

    def __init__(self) -> None:
        super().__init__()
        self._controller_cpu_at_start = 0.0
        self._controller_requests_at_start = 0.0
        self._controller_io_at_start = (0, 0)
        self._apiserver_at_start: Counter[str] = Counter()

    def start(self, cp: ControlPlane, work_dir: Path) -> None:
        # The same unlimited client budget as kube-scheduler's and ours: at its default 20 QPS
        # the controller-manager, not DRA, would set the pace (two writes per pod).
        cp.start_controller_manager(
            {
                "controllers": CLAIM_CONTROLLER,
                "kube-api-qps": "100000",
                "kube-api-burst": "100000",
            }
        )
        super().start(cp, work_dir)

    def prepare(
        self,
        api: KubeApi,
        capacities: Mapping[str, budget.Usage],
        specs: Sequence[PodSpec],
        namespace: str,
    ) -> None:
        assert self._cp is not None
        with self._cp.api_client() as client:
            dra.publish(client, capacities, workers=32)
        with ThreadPoolExecutor(32) as pool:
            list(
                pool.map(
                    lambda body: api.create(
                        f"{_API}/namespaces/{namespace}/resourceclaimtemplates", body
                    ),
                    claim_templates(specs, namespace),
                )
            )

    def pod_object(self, spec: PodSpec, namespace: str) -> dict[str, Any]:
        return dra_pod_object(spec, namespace)

    def _controller_pid(self) -> int:
        assert self._cp is not None
        return self._cp.pids()["kube-controller-manager"]

    def _controller_metrics_url(self) -> str:
        assert self._cp is not None
        return f"https://127.0.0.1:{self._cp.ports['kube-controller-manager']}/metrics"

    def _apiserver_counts(self) -> Counter[str]:
        assert self._cp is not None
        samples = measure.scrape_samples(
            f"{self._cp.server}/metrics",
            "apiserver_request_total",
            client_cert=(self._cp.pki.admin_cert, self._cp.pki.admin_key),
        )
        counts: Counter[str] = Counter()
        for labels, value in samples:
            key = (
                labels.get("verb", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
            )
            if key in _COUNTED:
                counts[_COUNTED[key]] += int(value)
        return counts

    def mark(self) -> None:
        super().mark()
        self._controller_cpu_at_start = measure.cpu_seconds(self._controller_pid())
        self._controller_requests_at_start = measure.scrape_sum(
            self._controller_metrics_url(), "rest_client_requests_total"
        )
        self._controller_io_at_start = measure.io_bytes(self._controller_pid())  # after scrape
        self._apiserver_at_start = self._apiserver_counts()

    def usage(self) -> Usage:
        scheduler = super().usage()
        read, written = measure.io_bytes(self._controller_pid())  # before the scrape
        controller_received = read - self._controller_io_at_start[0]
        controller_sent = written - self._controller_io_at_start[1]
        controller_requests = (
            measure.scrape_sum(self._controller_metrics_url(), "rest_client_requests_total")
            - self._controller_requests_at_start
        )
        counts = self._apiserver_counts()
        counts.subtract(self._apiserver_at_start)
        return Usage(
            cpu_seconds=scheduler.cpu_seconds,
            peak_rss_mib=scheduler.peak_rss_mib,
            api_requests=scheduler.api_requests + controller_requests,
            bytes_received=scheduler.bytes_received + controller_received,
            bytes_sent=scheduler.bytes_sent + controller_sent,
            detail={
                "claim_controller_bytes_received": controller_received,
                "claim_controller_bytes_sent": controller_sent,
                "scheduler_api_requests": scheduler.api_requests,
                "claim_controller_api_requests": controller_requests,
                "claim_controller_cpu_seconds": measure.cpu_seconds(self._controller_pid())
                - self._controller_cpu_at_start,
                "claim_controller_peak_rss_mib": measure.peak_rss_mib(self._controller_pid()),
                **{name: counts[name] for name in sorted(set(_COUNTED.values()))},
            },
        )

    def audit(self, api: KubeApi, capacities: Mapping[str, budget.Usage]) -> Audit:
        claims, _ = api.list(f"{_API}/resourceclaims")
        slices, _ = api.list(
            f"{_API}/resourceslices", {"fieldSelector": f"spec.driver={dra.DRIVER}"}
        )
        return audit_claims(claims, slices, capacities)

    def stop(self) -> None:
        super().stop()
        if self._cp is not None:
            self._cp.stop_component("kube-controller-manager")
