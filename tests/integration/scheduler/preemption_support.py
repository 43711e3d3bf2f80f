"""What the preemption tests need beside the scheduler: PriorityClasses, a stand-in for the
kubelet that simulated nodes lack, and an audit of the books at every instant.

The audit watches the test's pods and the Bandwidth objects of its nodes from the moment it
starts, and afterwards replays every event in ``resourceVersion`` order (etcd's revision,
global to all kinds), so it sees each state the apiserver went through, in order — not a poll
that may miss the instant two pods overlapped. In each state a node is charged, once per pod
UID, for its ledger's reservations and for every pod bound to it that has not finished:
terminating pods included, so a victim holds its bandwidth until it is gone.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bandwidth.budget import AxisVector
from bandwidth.model import MalformedBandwidth, parse_bandwidth
from bandwidth.request import (
    InvalidBandwidthAnnotation,
    RequestPolicy,
    request_from_annotations,
)
from kubeio.errors import NotFound
from kubeio.resources import BANDWIDTHS, PODS, Resource
from kubeio.rest import KubeApi, WatchStream

JSON = dict[str, Any]
PRIORITY_CLASSES = Resource("scheduling.k8s.io", "v1", "priorityclasses", namespaced=False)
TERMINAL = ("Succeeded", "Failed")


def make_priority_classes(kube: KubeApi, prefix: str, values: dict[str, int]) -> dict[str, str]:
    """A PriorityClass per entry (``never-...`` entries get ``preemptionPolicy: Never``)."""
    names = {}
    for key, value in values.items():
        name = f"{prefix}-{key}"
        body: JSON = {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
        }
        if key.startswith("never"):
            body["preemptionPolicy"] = "Never"
        kube.create(PRIORITY_CLASSES.path(), body)
        names[key] = name
    return names


def delete_priority_classes(kube: KubeApi, names: Iterable[str]) -> None:
    for name in names:
        with contextlib.suppress(NotFound):
            kube.delete(PRIORITY_CLASSES.path(name=name))


def timestamp(minutes_ago: float) -> str:
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Kubelet:
    """What a kubelet would do for pods on simulated nodes, done by hand."""

    def __init__(self, kube: KubeApi, namespace: str) -> None:
        self._kube = kube
        self._namespace = namespace

    def start(self, name: str, minutes_ago: float) -> None:
        """Running and Ready, started ``minutes_ago``: preemption spares the longest-running."""
        since = timestamp(minutes_ago)
        self._kube.patch(
            PODS.path(namespace=self._namespace, name=name, subresource="status"),
            {
                "status": {
                    "phase": "Running",
                    "startTime": since,
                    "conditions": [
                        {"type": "Ready", "status": "True", "lastTransitionTime": since},
                        {"type": "ContainersReady", "status": "True", "lastTransitionTime": since},
                    ],
                }
            },
            "application/strategic-merge-patch+json",
        )

    def finish_deletion(self, name: str) -> None:
        """The containers stopped: the pod object goes (a deletion with no grace left)."""
        with contextlib.suppress(NotFound):
            self._kube.request(
                "DELETE",
                PODS.path(namespace=self._namespace, name=name),
                body={"gracePeriodSeconds": 0},
            )


@dataclass
class Overcommit:
    resource_version: int
    node: str
    charged: AxisVector
    capacity: AxisVector
    holders: list[str]


@dataclass
class AuditReport:
    states: int = 0
    overcommits: list[Overcommit] = field(default_factory=list)
    terminating_holders: set[str] = field(default_factory=set)
    """Pods seen holding bandwidth on a node while terminating (their names)."""
    peak: dict[str, AxisVector] = field(default_factory=dict)


class BooksAudit:
    def __init__(self, kube: KubeApi, namespace: str, nodes: Iterable[str]) -> None:
        self._kube = kube
        self._namespace = namespace
        self._nodes = set(nodes)
        self._events: list[tuple[int, str, str, JSON]] = []
        self._lock = threading.Lock()
        self._streams: list[WatchStream] = []
        self._threads: list[threading.Thread] = []
        self._errors: list[str] = []
        self._stopping = threading.Event()
        self._policy = RequestPolicy()

    def start(self) -> None:
        for kind, path in (
            ("pod", PODS.path(namespace=self._namespace)),
            ("bandwidth", BANDWIDTHS.path()),
        ):
            items, version = self._kube.list(path)
            for item in items:
                self._record(kind, "ADDED", item)
            stream = self._kube.watch(path, {"resourceVersion": version}, timeout_seconds=900)
            self._streams.append(stream)
            thread = threading.Thread(target=self._follow, args=(kind, stream), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _follow(self, kind: str, stream: WatchStream) -> None:
        try:
            for event in stream:
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    self._record(kind, str(event["type"]), event["object"])
        except Exception as error:
            if not self._stopping.is_set():  # not the close at the end: a gap in the record
                with self._lock:
                    self._errors.append(f"{kind}: {error}")

    def _record(self, kind: str, event_type: str, obj: JSON) -> None:
        version = int(obj["metadata"]["resourceVersion"])
        with self._lock:
            self._events.append((version, kind, event_type, obj))

    def stop(self) -> AuditReport:
        self._stopping.set()
        for stream in self._streams:
            stream.close()
        for thread in self._threads:
            thread.join(5)
        with self._lock:
            events = sorted(self._events, key=lambda e: e[0])
        return self._replay(events)

    def _replay(self, events: list[tuple[int, str, str, JSON]]) -> AuditReport:
        report = AuditReport()
        pods: dict[str, JSON] = {}
        ledgers: dict[str, JSON] = {}
        for version, kind, event_type, obj in events:
            if kind == "pod":
                uid = obj["metadata"]["uid"]
                if event_type == "DELETED":
                    pods.pop(uid, None)
                else:
                    pods[uid] = obj
                touched = {obj["spec"].get("nodeName")}
            else:
                name = obj["metadata"]["name"]
                if name not in self._nodes:
                    continue
                if event_type == "DELETED":
                    ledgers.pop(name, None)
                else:
                    ledgers[name] = obj
                touched = {name}
            report.states += 1
            for node in touched & set(ledgers):
                self._check(version, node, ledgers[node], pods, report)
        return report

    def _check(
        self, version: int, node: str, ledger_json: JSON, pods: dict[str, JSON], report: AuditReport
    ) -> None:
        try:
            ledger = parse_bandwidth(ledger_json)
        except MalformedBandwidth:
            return
        charges: dict[str, tuple[str, AxisVector]] = {}
        for uid, reservation in ledger.reservations.items():
            charges[uid] = (reservation.pod_name, reservation.request.charge().as_tuple())
        for uid, pod in pods.items():
            if (
                pod["spec"].get("nodeName") != node
                or pod.get("status", {}).get("phase") in TERMINAL
            ):
                continue
            metadata = pod["metadata"]
            if metadata.get("deletionTimestamp"):
                report.terminating_holders.add(metadata["name"])
            if uid in charges:
                continue
            try:
                request = request_from_annotations(metadata.get("annotations"), self._policy)
            except InvalidBandwidthAnnotation:
                continue
            charges[uid] = (metadata["name"], request.charge().as_tuple())
        total = [0, 0, 0, 0]
        for _, charge in charges.values():
            for axis in range(4):
                total[axis] += charge[axis]
        charged = (total[0], total[1], total[2], total[3])
        peak = report.peak.get(node, (0, 0, 0, 0))
        report.peak[node] = tuple(max(a, b) for a, b in zip(peak, charged, strict=True))  # type: ignore[assignment]
        capacity = ledger.capacity.as_tuple()
        if any(charged[axis] > capacity[axis] for axis in range(4)):
            report.overcommits.append(
                Overcommit(version, node, charged, capacity, sorted(n for n, _ in charges.values()))
            )

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)
