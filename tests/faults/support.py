"""Helpers for the fault tests: the daemons as child processes, a lab of nodes and pods, and an
audit of the books that every fault test ends with.

- :class:`Daemon` — ``python -m scheduler`` or ``python -m accounting``, JSON logs to a file,
  its ``/metrics`` and ``/readyz``; SIGKILL, SIGTERM.
- :class:`Lab` — one test's nodes (labelled with a scope, so the accounting controller can be
  told to manage only them, and pods select only them), namespace and scheduler name.
- :class:`Audit` — what the cluster looks like once the dust settles: pods bound per node,
  reservations lost (a bound pod of ours without its ledger entry), double bookings (a pod
  reserved on two nodes, or on a node it is not bound to while bound to another, or a node
  charged beyond its capacity) and leaked reservations (an entry whose pod is gone or unbound).
  :meth:`Audit.row` prints the line the reliability table in ``docs/reliability.md`` is made of.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes.client import ApiClient

from bandwidth.budget import AXES, Usage
from bandwidth.model import MalformedBandwidth, parse_bandwidth
from bandwidth.request import BandwidthRequest, RequestPolicy, request_from_annotations
from kubeio.errors import ApiError, Conflict, NotFound
from kubeio.resources import BANDWIDTHS, EVENTS, NODES, PODS
from kubeio.rest import KubeApi
from localcluster import create_simulated_nodes

JSON = dict[str, Any]
T = TypeVar("T")

SCOPE_LABEL = "faults.test.vaclab.org/scope"
EGRESS = "kubernetes.io/egress-bandwidth"
INGRESS = "kubernetes.io/ingress-bandwidth"


def wait_for(what: str, check: Callable[[], T], timeout: float = 30.0, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)
        last = check()
    return last


# ------------------------------------------------------------------------------ daemons
class Daemon:
    """A daemon as a child process; stderr (its JSON log) and stdout go to files."""

    def __init__(self, module: str, args: Sequence[str], log_dir: Path, name: str) -> None:
        self.module = module
        self.name = name
        self.log = log_dir / f"{name}.log"
        self.out = log_dir / f"{name}.out"
        with self.log.open("wb") as stderr, self.out.open("wb") as stdout:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    module,
                    "--log-format=json",
                    "--metrics-bind-address=127.0.0.1:0",
                    "--health-probe-bind-address=127.0.0.1:0",
                    *args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self) -> list[JSON]:
        found: list[JSON] = []
        for line in self.text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "unparsed", "line": line}
            found.append(event if isinstance(event, dict) else {"event": "unparsed", "line": line})
        return found

    def named(self, event: str) -> list[JSON]:
        return [e for e in self.events() if e.get("event") == event]

    def relisted_after_expiry(self, kind: str) -> bool:
        """Whether the cache of ``kind`` (``pods``, ...) got 410 Gone and listed again."""
        return any(e.get("kind") == kind for e in self.named("watch_expired"))

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_synced(self, timeout: float = 30.0) -> None:
        wait_for(
            f"{self.name} to sync its caches",
            lambda: self.named("caches_synced") or self.process.poll() is not None,
            timeout,
        )
        assert self.process.poll() is None, f"{self.name} exited:\n{self.tail()}"

    def _port(self, key: str) -> int:
        started = wait_for(f"{self.name} to start", lambda: self.named("started"))
        return int(started[-1][key])

    def metrics(self) -> str:
        port = self._port("metrics_port")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return str(reply.read().decode())

    def tracebacks(self) -> list[str]:
        """Log lines carrying a Python stack trace."""
        return [line for line in self.text().splitlines() if "Traceback" in line]

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no goodbye, no cleanup."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return int(self.process.returncode)


# --------------------------------------------------------------------------------- lab
@dataclass
class Lab:
    """One test's corner of a control plane: scoped nodes, a namespace, a scheduler name."""

    kube: KubeApi
    api_client: ApiClient
    kubeconfig: Path
    log_dir: Path
    namespace: str = ""
    scope: str = field(default_factory=lambda: f"f-{uuid.uuid4().hex[:6]}")
    scheduler_name: str = ""
    nodes: list[str] = field(default_factory=list)
    daemons: list[Daemon] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scheduler_name = self.scheduler_name or f"vaclab-{self.scope}"
        self.namespace = self.namespace or self.scope

    @property
    def selector(self) -> str:
        return f"{SCOPE_LABEL}={self.scope}"

    # ---------------------------------------------------------------------- set-up
    def create_namespace(self) -> None:
        self.kube.create(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
        )
        with contextlib.suppress(Conflict):  # without kube-controller-manager nobody makes it
            self.kube.create(
                f"/api/v1/namespaces/{self.namespace}/serviceaccounts",
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
            )

    def make_nodes(
        self,
        count: int,
        network_mbps: int | str = 1000,
        local_mbps: int | str = 20000,
        **node: Any,
    ) -> list[str]:
        """Simulated nodes whose annotations give the accounting controller their capacity;
        ``node`` goes to ``create_simulated_nodes`` (``cpu="..."``, ``taints=[...]``)."""
        capacity = {
            "bandwidth.vaclab.org/network-ul-mbps": str(network_mbps),
            "bandwidth.vaclab.org/network-dl-mbps": str(network_mbps),
            "bandwidth.vaclab.org/local-ul-mbps": str(local_mbps),
            "bandwidth.vaclab.org/local-dl-mbps": str(local_mbps),
        }
        names = create_simulated_nodes(
            self.api_client,
            count,
            name_prefix=self.scope,
            start_index=len(self.nodes),
            labels={SCOPE_LABEL: self.scope},
            annotations=capacity,
            **node,
        )
        self.nodes.extend(names)
        return names

    def scheduler(self, *extra: str, kubeconfig: Path | None = None, name: str = "") -> Daemon:
        args = [f"--kubeconfig={kubeconfig or self.kubeconfig}"]
        args.append(f"--scheduler-name={self.scheduler_name}")
        return self._daemon("scheduler", [*args, *extra], name or "scheduler")

    def accounting(self, *extra: str, kubeconfig: Path | None = None, name: str = "") -> Daemon:
        args = [f"--kubeconfig={kubeconfig or self.kubeconfig}", f"--node-selector={self.selector}"]
        return self._daemon("accounting", [*args, *extra], name or "accounting")

    def _daemon(self, module: str, args: list[str], name: str) -> Daemon:
        taken = {d.name for d in self.daemons}
        unique, n = name, 1
        while unique in taken:
            n += 1
            unique = f"{name}-{n}"
        daemon = Daemon(module, args, self.log_dir, unique)
        self.daemons.append(daemon)
        return daemon

    def pod_body(
        self,
        name: str,
        *,
        egress: str | None = "100M",
        ingress: str | None = None,
        annotations: dict[str, str] | None = None,
        node_selector: dict[str, str] | None = None,
        scheduler_name: str = "",
        requests: dict[str, str] | None = None,
    ) -> JSON:
        notes = dict(annotations or {})
        if egress is not None:
            notes[EGRESS] = egress
        if ingress is not None:
            notes[INGRESS] = ingress
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace, "annotations": notes},
            "spec": {
                "schedulerName": scheduler_name or self.scheduler_name,
                "nodeSelector": {SCOPE_LABEL: self.scope, **(node_selector or {})},
                "containers": [
                    {
                        "name": "app",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": requests or {"cpu": "10m"}},
                    }
                ],
            },
        }

    def create_pod(self, name: str, **kwargs: Any) -> JSON:
        return self.kube.create(PODS.path(namespace=self.namespace), self.pod_body(name, **kwargs))

    def create_pods(self, names: Iterable[str], workers: int = 8, **kwargs: Any) -> None:
        """Create pods on ``workers`` threads, as a burst; failures are retried for 90 s (the
        apiserver may be away on purpose)."""

        def create(name: str) -> None:
            deadline = time.monotonic() + 90
            while True:
                try:
                    self.create_pod(name, **kwargs)
                    return
                except Conflict:
                    return  # created by an attempt whose answer was lost
                except ApiError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(create, names))

    def bind(self, name: str, node: str) -> None:
        """Bind a pod as another scheduler would (``pods/binding``)."""
        self.kube.create(
            PODS.path(namespace=self.namespace, name=name, subresource="binding"),
            {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "namespace": self.namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            },
        )

    def delete_pod(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            self.kube.request(
                "DELETE",
                PODS.path(namespace=self.namespace, name=name),
                body={"gracePeriodSeconds": 0},
            )

    # ---------------------------------------------------------------------- reading
    def pods(self) -> list[JSON]:
        items, _ = self.kube.list(PODS.path(namespace=self.namespace))
        return items

    def bound(self) -> dict[str, str]:
        return {
            p["metadata"]["name"]: p["spec"]["nodeName"]
            for p in self.pods()
            if p["spec"].get("nodeName")
        }

    def bandwidth(self, node: str) -> JSON | None:
        with contextlib.suppress(NotFound):
            return self.kube.get(BANDWIDTHS.path(name=node))
        return None

    def bandwidths(self) -> dict[str, JSON]:
        items, _ = self.kube.list(BANDWIDTHS.path())
        return {
            item["metadata"]["name"]: item
            for item in items
            if item["metadata"]["name"].startswith(self.scope + "-")
        }

    def events(self, kind: str, name: str, namespace: str | None = None) -> list[JSON]:
        items, _ = self.kube.list(
            EVENTS.path(namespace=self.namespace if namespace is None else namespace),
            {"fieldSelector": f"involvedObject.kind={kind},involvedObject.name={name}"},
        )
        return items

    def live_nodes(self) -> set[str]:
        items, _ = self.kube.list(NODES.path(), {"labelSelector": self.selector})
        return {item["metadata"]["name"] for item in items}

    # ---------------------------------------------------------------------- the end
    def audit(self) -> Audit:
        return audit(self.pods(), self.bandwidths(), self.scheduler_name)

    def settled_audit(self, timeout: float = 20.0) -> Audit:
        """The audit once no reservation is left without its bound pod (stale ones wait for
        the accounting controller's grace period), or the last one after ``timeout``."""
        deadline = time.monotonic() + timeout
        result = self.audit()
        while result.leaked and time.monotonic() < deadline:
            time.sleep(0.5)
            result = self.audit()
        return result

    def cleanup(self) -> None:
        for daemon in self.daemons:
            daemon.kill()
        for node in self.nodes:
            with contextlib.suppress(NotFound):
                self.kube.delete(NODES.path(name=node))
            with contextlib.suppress(NotFound):
                self.kube.delete(BANDWIDTHS.path(name=node))
        if self.namespace:
            with contextlib.suppress(NotFound):
                self.kube.delete(f"/api/v1/namespaces/{self.namespace}")


# ------------------------------------------------------------------------------- audit
@dataclass(frozen=True)
class Audit:
    pods: int
    bound: Counter[str]
    pending: int
    reservations: int
    lost: tuple[str, ...]
    double: tuple[str, ...]
    leaked: tuple[str, ...]
    oversubscribed: tuple[str, ...]

    @property
    def bound_total(self) -> int:
        return sum(self.bound.values())

    def row(self, fault: str) -> str:
        line = (
            f"RELIABILITY | {fault} | pods {self.pods} | bound {self.bound_total} | "
            f"pending {self.pending} | reservations {self.reservations} | "
            f"lost {len(self.lost)} | double {len(self.double)} | leaked {len(self.leaked)} | "
            f"oversubscribed nodes {len(self.oversubscribed)}"
        )
        print(line)
        return line

    def assert_clean(self) -> None:
        """Nothing lost, nothing double-booked, nothing leaked, no node oversubscribed."""
        assert not self.lost, f"reservations lost: {self.lost}"
        assert not self.double, f"double bookings: {self.double}"
        assert not self.leaked, f"leaked reservations: {self.leaked}"
        assert not self.oversubscribed, f"oversubscribed: {self.oversubscribed}"


def _request_of(pod: JSON) -> BandwidthRequest | None:
    try:
        return request_from_annotations(pod["metadata"].get("annotations"), RequestPolicy())
    except ValueError:
        return None


def audit(pods: list[JSON], bandwidths: dict[str, JSON], scheduler_name: str) -> Audit:
    by_uid = {p["metadata"]["uid"]: p for p in pods}
    live = {
        uid: p
        for uid, p in by_uid.items()
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    }
    bound = Counter(p["spec"]["nodeName"] for p in live.values() if p["spec"].get("nodeName"))
    holders: dict[str, list[str]] = {}
    lost: list[str] = []
    double: list[str] = []
    leaked: list[str] = []
    oversubscribed: list[str] = []
    reservations = 0
    for name, raw in sorted(bandwidths.items()):
        try:
            ledger = parse_bandwidth(raw)
        except MalformedBandwidth:
            continue
        charged: dict[str, BandwidthRequest] = {}
        for uid, reservation in ledger.reservations.items():
            reservations += 1
            holders.setdefault(uid, []).append(name)
            charged[uid] = reservation.request
            pod = live.get(uid)
            node = (pod or {}).get("spec", {}).get("nodeName") if pod else None
            if pod is None or not node:
                leaked.append(f"{name}: {reservation.pod_namespace}/{reservation.pod_name}")
            elif node != name:
                double.append(f"{reservation.pod_name} reserved on {name}, bound to {node}")
        for uid, pod in live.items():
            if pod["spec"].get("nodeName") == name and uid not in charged:
                request = _request_of(pod)
                if request is not None and not request.is_zero():
                    charged[uid] = request
                    if pod["spec"].get("schedulerName") == scheduler_name:
                        lost.append(f"{pod['metadata']['name']} on {name}")
        used = sum((r.charge() for r in charged.values()), Usage())
        over = [str(axis) for axis in AXES if used.on(axis) > ledger.capacity.on(axis)]
        if over:
            oversubscribed.append(f"{name}: {', '.join(over)}")
    for uid, names in holders.items():
        if len(names) > 1:
            double.append(f"{by_uid.get(uid, {}).get('metadata', {}).get('name', uid)}: {names}")
    pending = sum(1 for p in live.values() if not p["spec"].get("nodeName"))
    return Audit(
        pods=len(pods),
        bound=bound,
        pending=pending,
        reservations=reservations,
        lost=tuple(lost),
        double=tuple(double),
        leaked=tuple(leaked),
        oversubscribed=tuple(oversubscribed),
    )


def requests_per_second(times: Iterable[float], start: float, end: float) -> list[int]:
    """How many of ``times`` fall in each whole second from ``start`` to ``end``."""
    buckets = [0] * max(1, int(end - start + 0.999))
    for at in times:
        if start <= at < end:
            buckets[min(len(buckets) - 1, int(at - start))] += 1
    return buckets
