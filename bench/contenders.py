"""The contenders, each started on its own fresh control plane with the same settings.

A. ``vaclab``     — our scheduler and accounting controller (subprocesses).
B. ``kube``       — kube-scheduler of the same Kubernetes release; bandwidth modelled as node
                    extended resources that the same pods request.
C. ``roundrobin`` — binds pods to nodes in turn with no decision at all: the apiserver's ceiling.
D. ``dra``        — kube-scheduler with DRA consumable capacity (``bench.dra``).

Each contender says what its pods look like (``pod_object``), may create what they need before
they arrive (``prepare``) and may audit the outcome from its own books (``audit``); the
defaults are the annotated pods of A and C and no extra objects.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bandwidth import budget
from bench import measure, stages
from bench.workload import PodSpec, pod_object
from kubeio.errors import ApiError
from kubeio.resources import PODS
from kubeio.rest import KubeApi
from kubeio.watchcache import WatchCache
from localcluster.controlplane import ControlPlane
from localcluster.process import free_port

VACLAB = "vaclab"
KUBE = "kube"
ROUNDROBIN = "roundrobin"
DRA = "dra"
SCHEDULER_NAMES = {
    VACLAB: "vaclab-scheduler",
    KUBE: "default-scheduler",
    ROUNDROBIN: "roundrobin",
    DRA: "default-scheduler",
}


@dataclass
class Usage:
    cpu_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    api_requests: float = 0.0
    bytes_received: int = 0
    """From the apiserver: responses and watch events (``measure.io_bytes``)."""
    bytes_sent: int = 0
    """To the apiserver: requests (``measure.io_bytes``)."""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Audit:
    """Nodes found over capacity on some axis, by the contender's own books."""

    oversubscribed_nodes: int
    detail: dict[str, Any] = field(default_factory=dict)


class Contender(Protocol):
    name: str

    def start(self, cp: ControlPlane, work_dir: Path) -> None: ...

    def prepare(
        self,
        api: KubeApi,
        capacities: Mapping[str, budget.Usage],
        specs: Sequence[PodSpec],
        namespace: str,
    ) -> None:
        """Create what the contender's pods need before they arrive (after ``start``)."""

    def pod_object(self, spec: PodSpec, namespace: str) -> dict[str, Any]:
        """The pod as this contender's users would write it."""

    def mark(self) -> None:
        """Start counting CPU and requests here: start-up is not the workload's cost."""

    def usage(self) -> Usage: ...

    def audit(self, api: KubeApi, capacities: Mapping[str, budget.Usage]) -> Audit | None:
        """Oversubscription by the contender's own books, or None to audit the bound pods."""

    def stop(self) -> None: ...


class Defaults:
    """What most contenders share: annotated pods, nothing to prepare, the pods' audit."""

    name: str

    def prepare(
        self,
        api: KubeApi,
        capacities: Mapping[str, budget.Usage],
        specs: Sequence[PodSpec],
        namespace: str,
    ) -> None:
        return None

    def pod_object(self, spec: PodSpec, namespace: str) -> dict[str, Any]:
        return pod_object(spec, scheduler_name=SCHEDULER_NAMES[self.name], namespace=namespace)

    def audit(self, api: KubeApi, capacities: Mapping[str, budget.Usage]) -> Audit | None:
        return None


class Vaclab(Defaults):
    name = VACLAB

    def __init__(self) -> None:
        self._daemons: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        self._cpu_at_start: dict[str, float] = {}
        self._io_at_start: dict[str, tuple[int, int]] = {}
        self._stages_at_start: stages.Snapshot | None = None
        self._requests_at_start: dict[str, float] = {}

    def start(self, cp: ControlPlane, work_dir: Path) -> None:
        for module in ("accounting", "scheduler"):
            port = free_port()
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    module,
                    "--kubeconfig",
                    str(cp.kubeconfig_path),
                    "--metrics-bind-address",
                    f"127.0.0.1:{port}",
                    "--health-probe-bind-address",
                    "0",
                    "--log-level",
                    "warning",
                ],
                stderr=(work_dir / f"{module}.log").open("wb"),
                stdout=subprocess.DEVNULL,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
            self._daemons[module] = (process, port)

    def mark(self) -> None:
        """Measure from here on: start-up and cache sync are not the workload's cost."""
        self._cpu_at_start = {m: measure.cpu_seconds(p.pid) for m, (p, _) in self._daemons.items()}
        # At start-up the accounting controller creates a Bandwidth per node and writes its
        # first status: two requests per node, one per pod at 5000 nodes and 10000 pods.
        self._requests_at_start = {m: self._requests(m) for m in self._daemons}
        self._stages_at_start = stages.scrape(self._metrics_url("scheduler"))
        # After the scrape above: the bytes counted are the apiserver's, not the scrape's.
        self._io_at_start = {m: measure.io_bytes(p.pid) for m, (p, _) in self._daemons.items()}

    def scheduler_pid(self) -> int:
        return self._daemons["scheduler"][0].pid

    def _metrics_url(self, module: str) -> str:
        return f"http://127.0.0.1:{self._daemons[module][1]}/metrics"

    def _requests(self, module: str) -> float:
        return measure.scrape_sum(self._metrics_url(module), "vaclab_api_requests_total")

    def usage(self) -> Usage:
        process, _ = self._daemons["scheduler"]
        requests = 0.0
        received = sent = 0
        detail: dict[str, Any] = {}
        for module, (each, _) in self._daemons.items():
            read, written = measure.io_bytes(each.pid)  # before the scrape below
            read_at_start, written_at_start = self._io_at_start.get(module, (0, 0))
            received += read - read_at_start
            sent += written - written_at_start
            detail[f"{module}_bytes_received"] = read - read_at_start
            detail[f"{module}_bytes_sent"] = written - written_at_start
            count = self._requests(module) - self._requests_at_start.get(module, 0.0)
            requests += count
            detail[f"{module}_api_requests"] = count
            detail[f"{module}_cpu_seconds"] = measure.cpu_seconds(
                each.pid
            ) - self._cpu_at_start.get(module, 0)
            detail[f"{module}_peak_rss_mib"] = measure.peak_rss_mib(each.pid)
        if self._stages_at_start is not None:
            after = stages.scrape(self._metrics_url("scheduler"))
            detail["stages"] = stages.as_detail(stages.figures(self._stages_at_start, after))
        return Usage(
            cpu_seconds=measure.cpu_seconds(process.pid) - self._cpu_at_start.get("scheduler", 0),
            peak_rss_mib=measure.peak_rss_mib(process.pid),
            api_requests=requests,
            bytes_received=received,
            bytes_sent=sent,
            detail=detail,
        )

    def stop(self) -> None:
        for process, _ in self._daemons.values():
            process.terminate()
        for process, _ in self._daemons.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


class KubeScheduler(Defaults):
    name = KUBE

    def __init__(self) -> None:
        self._cp: ControlPlane | None = None
        self._cpu_at_start = 0.0
        self._requests_at_start = 0.0
        self._io_at_start = (0, 0)

    def start(self, cp: ControlPlane, work_dir: Path) -> None:
        self._cp = cp
        config = work_dir / "kube-scheduler-config.yaml"
        # The same client budget as ours, which applies no client-side rate limit.
        config.write_text(
            "apiVersion: kubescheduler.config.k8s.io/v1\n"
            "kind: KubeSchedulerConfiguration\n"
            "leaderElection: {leaderElect: false}\n"
            f"clientConnection: {{kubeconfig: {cp.work_dir / 'kube-scheduler.kubeconfig'}, "
            "qps: 100000, burst: 100000}\n"
        )
        cp.start_kube_scheduler({"config": str(config)})

    def pod_object(self, spec: PodSpec, namespace: str) -> dict[str, Any]:
        return pod_object(
            spec,
            scheduler_name=SCHEDULER_NAMES[self.name],
            namespace=namespace,
            as_extended_resources=True,
        )

    def _metrics_url(self) -> str:
        assert self._cp is not None
        return f"https://127.0.0.1:{self._cp.ports['kube-scheduler']}/metrics"

    def _pid(self) -> int:
        assert self._cp is not None
        return self._cp.pids()["kube-scheduler"]

    def mark(self) -> None:
        self._cpu_at_start = measure.cpu_seconds(self._pid())
        self._requests_at_start = measure.scrape_sum(
            self._metrics_url(), "rest_client_requests_total"
        )
        self._io_at_start = measure.io_bytes(self._pid())  # after the scrape: it writes

    def usage(self) -> Usage:
        read, written = measure.io_bytes(self._pid())  # before the scrape
        return Usage(
            cpu_seconds=measure.cpu_seconds(self._pid()) - self._cpu_at_start,
            peak_rss_mib=measure.peak_rss_mib(self._pid()),
            api_requests=measure.scrape_sum(self._metrics_url(), "rest_client_requests_total")
            - self._requests_at_start,
            bytes_received=read - self._io_at_start[0],
            bytes_sent=written - self._io_at_start[1],
        )

    def stop(self) -> None:
        if self._cp is not None:
            self._cp.stop_component("kube-scheduler")


class RoundRobin(Defaults):
    """Binds each pending pod of its scheduler name to the next node: no filter, no score."""

    name = ROUNDROBIN

    def __init__(self) -> None:
        self._api: KubeApi | None = None
        self._cache: WatchCache | None = None
        self._pool = ThreadPoolExecutor(16, thread_name_prefix="rr-bind")
        self._nodes: itertools.cycle[str] | None = None
        self._lock = threading.Lock()
        self.requests = 0
        self._cpu_at_start = 0.0
        self._watch_threads: set[int] = set()
        self._io_at_start: dict[int, tuple[int, int]] = {}

    def start(self, cp: ControlPlane, work_dir: Path) -> None:
        from kubeio.config import load_client_configuration
        from kubeio.resources import NODES

        def count(verb: str, resource: str, status: int) -> None:
            with self._lock:
                self.requests += 1

        self._api = KubeApi(
            load_client_configuration(str(cp.kubeconfig_path), pool_size=32), observe=count
        )
        nodes, _ = self._api.list(NODES.path())
        self._nodes = itertools.cycle(sorted(n["metadata"]["name"] for n in nodes))
        self._cache = WatchCache(self._api, PODS, field_selector="spec.nodeName=")
        self._cache.add_handler(self._on_pod)
        before = {t.native_id for t in threading.enumerate()}
        self._cache.start()
        self._watch_threads = {
            t.native_id
            for t in threading.enumerate()
            if t.native_id is not None and t.native_id not in before
        }
        self._cache.wait_synced(30)

    def _on_pod(self, kind: str, old: Any, new: Any) -> None:
        if (
            kind != "ADDED"
            or new is None
            or new["spec"].get("schedulerName") != SCHEDULER_NAMES[ROUNDROBIN]
        ):
            return
        assert self._nodes is not None
        with self._lock:
            node = next(self._nodes)
        self._pool.submit(self._bind, new["metadata"], node)

    def _bind(self, metadata: dict[str, Any], node: str) -> None:
        assert self._api is not None
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        with contextlib.suppress(ApiError):  # a pod deleted meanwhile is simply not counted
            self._api.create(
                PODS.path(
                    namespace=metadata["namespace"], name=metadata["name"], subresource="binding"
                ),
                body,
            )

    def _thread_io(self) -> dict[int, tuple[int, int]]:
        """I/O of the binder's own threads (its watch, its binding pool): the harness shares
        the process, so its counters are per thread."""
        tids = set(self._watch_threads)
        tids |= {
            t.native_id
            for t in threading.enumerate()
            if t.name.startswith("rr-bind") and t.native_id is not None
        }
        counters = {}
        for tid in tids:
            with contextlib.suppress(FileNotFoundError):  # a thread that ended
                counters[tid] = measure.io_bytes(os.getpid(), tid)
        return counters

    def mark(self) -> None:
        self._cpu_at_start = measure.cpu_seconds(os.getpid())
        self._io_at_start = self._thread_io()
        with self._lock:
            self.requests = 0

    def usage(self) -> Usage:
        # In-process: CPU and memory include the harness itself; noted in the report.
        received = sent = 0
        for tid, (read, written) in self._thread_io().items():
            read_at_start, written_at_start = self._io_at_start.get(tid, (0, 0))
            received += read - read_at_start
            sent += written - written_at_start
        return Usage(
            cpu_seconds=measure.cpu_seconds(os.getpid()) - self._cpu_at_start,
            peak_rss_mib=measure.peak_rss_mib(os.getpid()),
            api_requests=float(self.requests),
            bytes_received=received,
            bytes_sent=sent,
            detail={"in_process": True},
        )

    def stop(self) -> None:
        if self._cache is not None:
            self._cache.stop()
        self._pool.shutdown(wait=True)
        if self._api is not None:
            self._api.close()


def make(name: str) -> Contender:
    from bench.dra import KubeSchedulerDra  # it builds on this module

    contenders: dict[str, type[Contender]] = {
        VACLAB: Vaclab,
        KUBE: KubeScheduler,
        ROUNDROBIN: RoundRobin,
        DRA: KubeSchedulerDra,
    }
    return contenders[name]()
