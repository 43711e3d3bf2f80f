"""Peak memory of the scheduler's view of a large cluster, with no API.

The watch caches keep every object's JSON (managedFields dropped) and the cluster state keeps
``PodFacts``/``NodeInfo`` beside them; both are built here from realistic objects, as a
relist would deliver them, and the process's peak RSS is read from /proc. ``measure_footprint``
runs in a fresh process of its own: a peak is a high-water mark, and the benchmark runs before
it (the in-process round-robin binder, the audits' lists) would otherwise have set it.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

from bench.decisions import SCHEDULER
from bench.measure import peak_rss_mib
from bench.workload import ledger_object, node_capacity, node_object, pod_object, workload
from kubeio.watchcache import without_managed_fields
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig
from scheduler.queue import SchedulingQueue


@dataclass(frozen=True, slots=True)
class MemoryFootprint:
    nodes: int
    pods: int
    peak_rss_mib: float
    baseline_rss_mib: float


def _as_listed(pod: dict[str, Any], index: int, node: str) -> dict[str, Any]:
    """What a bound, running pod looks like in a list response (less managedFields)."""
    pod["metadata"].update(
        resourceVersion=str(100_000 + index),
        creationTimestamp="2026-11-23T08:00:00Z",
        generation=1,
    )
    pod["spec"].update(
        restartPolicy="Always",
        terminationGracePeriodSeconds=30,
        dnsPolicy="ClusterFirst",
        serviceAccountName="default",
        securityContext={},
        tolerations=[
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
    )
    pod["status"] = {
        "phase": "Running",
        "hostIP": "127.1.0.1",
        "podIP": f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}",
        "qosClass": "Burstable",
        "startTime": "2026-11-23T08:00:01Z",
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": "2026-11-23T08:00:01Z"}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
        "containerStatuses": [
            {
                "name": "app",
                "ready": True,
                "restartCount": 0,
                "image": "registry.k8s.io/pause:3.10",
                "imageID": "sha256:" + "0" * 64,
                "containerID": "containerd://" + f"{index:064x}",
                "started": True,
                "state": {"running": {"startedAt": "2026-11-23T08:00:02Z"}},
            }
        ],
    }
    return pod


def measure_footprint(nodes: int, pods: int) -> MemoryFootprint:
    """``footprint`` measured in a freshly spawned Python process."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(footprint, nodes, pods).result()


def footprint(nodes: int, pods: int) -> MemoryFootprint:
    """The peak RSS of this process once it holds the caches and state (see the module)."""
    gc.collect()
    baseline = peak_rss_mib_now()
    state = ClusterState(SchedulerConfig(scheduler_name=SCHEDULER), SchedulingQueue())
    cache: list[dict[str, Any]] = []
    names = [f"node-{i:05d}" for i in range(nodes)]
    for index, name in enumerate(names):
        node = node_object(name, f"zone-{index % 3}")
        cache.append(node)
        state.on_node("ADDED", None, node)
        ledger = ledger_object(name, node_capacity(index))
        cache.append(ledger)
        state.on_bandwidth("ADDED", None, ledger)
    for index, spec in enumerate(workload(pods, seed=13)):
        body = pod_object(
            spec,
            scheduler_name=SCHEDULER,
            namespace="bench",
            uid=f"uid-{index:08d}",
            node_name=names[index % nodes],
        )
        body = without_managed_fields(_as_listed(body, index, names[index % nodes]))
        cache.append(body)
        state.on_pod("ADDED", None, body)
    gc.collect()
    return MemoryFootprint(nodes, pods, peak_rss_mib(_self()), baseline)


def peak_rss_mib_now() -> float:
    return peak_rss_mib(_self())


def _self() -> int:
    import os

    return os.getpid()
