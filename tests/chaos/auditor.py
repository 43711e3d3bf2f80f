"""The auditor: consistent snapshots of the soak's books, judged continuously and once more
when the cluster is quiet.

:func:`read_snapshot` lists the soak's pods, then its nodes and Bandwidth objects *at the pods'
list resourceVersion* (``resourceVersionMatch=Exact``): the three lists are one etcd revision,
so a pod never meets a ledger from another moment. :class:`Auditor` takes one every
``interval`` seconds on its own thread (skipping, and counting, the ones the apiserver does not
answer), hands it to a :class:`~tests.chaos.books.Checker`, and prints each violation the first
time it is seen: when, the seed, the faults in progress, the message and the objects involved.

Chaos edits of a node (capacity, ledger, deleting its Bandwidth or the node) are recorded with
:meth:`Auditor.record_edit`, which reads what was charged on the node at the edit's own etcd
revision (the write's answer; just before and just after a delete): the over-capacity
exemption is exact, not timed.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubeio.errors import ApiError
from kubeio.resources import BANDWIDTHS, LEASES, NODES, PODS
from kubeio.rest import KubeApi
from tests.chaos.books import ChaosEdit, Checker, Finding, Snapshot, read_ledger
from tests.chaos.leases import (
    Incarnation,
    Tenure,
    Write,
    deposed_writes,
    is_leader_write,
    monotonic_of,
)
from tests.chaos.rig import Rig, identity_of
from tests.chaos.timeline import FaultTimeline
from tests.chaos.workload import UnknownSize, pod_demand

JSON = dict[str, Any]


def utc_clock() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]


def read_snapshot(kube: KubeApi, namespace: str, node_selector: str, prefix: str) -> Snapshot:
    pods, revision = kube.list(PODS.path(namespace=namespace))
    exact = {"resourceVersion": revision, "resourceVersionMatch": "Exact"}
    nodes, _ = kube.list(NODES.path(), {"labelSelector": node_selector, **exact})
    bandwidths, _ = kube.list(BANDWIDTHS.path(), exact)
    return Snapshot(
        at=time.monotonic(),
        resource_version=revision,
        pods=tuple(pods),
        nodes={n["metadata"]["name"]: dict(n["metadata"].get("labels") or {}) for n in nodes},
        bandwidths={
            b["metadata"]["name"]: b
            for b in bandwidths
            if str(b["metadata"]["name"]).startswith(prefix)
        },
    )


@dataclass
class Violation:
    kind: str
    key: str
    first_at: float
    """Seconds since the load began."""
    resource_version: str
    during: list[str]
    message: str
    objects: tuple[str, ...]
    phase: str
    """``soak`` (found while faults ran) or ``quiet`` (found by the final check)."""
    clock: str = ""
    """UTC time of day when it was found, to find the moment in the daemons' logs."""
    last_at: float = 0.0
    seen: int = 1

    def render(self, seed: int) -> str:
        during = "; ".join(self.during) or "no fault in progress"
        lines = [
            f"CHAOS VIOLATION {self.kind} t={self.first_at:.1f}s ({self.clock} UTC) seed={seed} "
            f"rv={self.resource_version} phase={self.phase} during [{during}]",
            f"  {self.message}",
            *(f"    {item}" for item in self.objects),
        ]
        return "\n".join(lines)


@dataclass
class AuditStats:
    audits: int = 0
    unanswered: int = 0
    bound_uids: set[str] = field(default_factory=set)


class Auditor:
    def __init__(
        self,
        kube: KubeApi,
        *,
        namespace: str,
        node_selector: str,
        prefix: str,
        checker: Checker,
        timeline: FaultTimeline,
        seed: int,
        started: float,
        interval: float = 1.0,
        leases: LeaseTracker | None = None,
        out: Callable[[str], None] = print,
    ) -> None:
        self.kube = kube
        self.leases = leases
        self.namespace = namespace
        self.node_selector = node_selector
        self.prefix = prefix
        self.checker = checker
        self.timeline = timeline
        self.seed = seed
        self.started = started
        self.interval = interval
        self.out = out
        self.stats = AuditStats()
        self.violations: dict[str, Violation] = {}
        self._edits: dict[str, ChaosEdit] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="auditor", daemon=True)

    # -------------------------------------------------------------------------- edits
    def edits(self) -> dict[str, ChaosEdit]:
        with self._lock:
            return dict(self._edits)

    def current_revision(self) -> str:
        """etcd's revision now (a one-item list's resourceVersion)."""
        return self.kube.list(PODS.path(namespace=self.namespace), page_size=1)[1]

    @contextmanager
    def editing(self, node: str, fault: str) -> Iterator[None]:
        """Around a chaos edit of ``node``: the node is exempt from the moment before the
        write until :meth:`record_edit` has read what was charged at the edit's revisions.
        Without this a snapshot taken between the write and the record would judge the new
        capacity against pods the edit itself found there. An edit that never happened
        (the block raises) leaves the previous record in place."""
        with self._lock:
            before = self._edits.get(node)
            self._edits[node] = ChaosEdit(node, fault, frozenset(), settling=True)
        try:
            yield
        except BaseException:
            with self._lock:
                if self._edits.get(node) == ChaosEdit(node, fault, frozenset(), settling=True):
                    if before is None:
                        del self._edits[node]
                    else:
                        self._edits[node] = before
            raise

    def record_edit(
        self,
        node: str,
        fault: str,
        revisions: Sequence[str],
        held: Mapping[str, Any] | None = None,
    ) -> ChaosEdit:
        """Remember that ``fault`` changed ``node``'s books: the pods charged there at any of
        ``revisions`` (bound to it, or in its ledger) or in ``held`` (the object as the edit
        returned it or deleted it) may keep it over capacity.

        ``revisions`` are etcd revisions of the edit itself: a write's answer, or the revisions
        just before and just after a delete. Never an object's own resourceVersion read before:
        that is when it last changed, which may be long before the edit."""
        charged = set(read_ledger(held).entries) if held else set()
        for revision in revisions:
            charged |= self._charged_at(node, revision)
        edit = ChaosEdit(node, fault, frozenset(charged))
        with self._lock:
            self._edits[node] = edit
        return edit

    def _charged_at(self, node: str, revision: str) -> set[str]:
        exact = {"resourceVersion": revision, "resourceVersionMatch": "Exact"}
        for attempt in range(20):
            try:
                pods, _ = self.kube.list(PODS.path(namespace=self.namespace), exact)
                objects, _ = self.kube.list(
                    BANDWIDTHS.path(), {"fieldSelector": f"metadata.name={node}", **exact}
                )
                break
            except ApiError:
                if attempt == 19:
                    raise
                time.sleep(0.5)
        charged: set[str] = set()
        for obj in objects:
            charged |= set(read_ledger(obj).entries)
        for pod in pods:
            if pod["spec"].get("nodeName") == node and _asks(pod):
                charged.add(pod["metadata"]["uid"])
        return charged

    # --------------------------------------------------------------------------- loop
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def snapshot(self) -> Snapshot | None:
        try:
            snapshot = read_snapshot(self.kube, self.namespace, self.node_selector, self.prefix)
        except ApiError:
            self.stats.unanswered += 1
            return None
        self.stats.audits += 1
        self.stats.bound_uids.update(
            p["metadata"]["uid"] for p in snapshot.pods if p["spec"].get("nodeName")
        )
        return snapshot

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            snapshot = self.snapshot()
            if snapshot is not None:
                self.report(self._judge(snapshot), snapshot, "soak")

    def _judge(self, snapshot: Snapshot, everything: bool = False) -> list[Finding]:
        found = self.checker.check(snapshot, self.edits())
        if self.leases is not None:
            self.leases.sample()
            found += self.leases.judge(everything)
        return found

    def report(self, findings: list[Finding], snapshot: Snapshot, phase: str) -> list[Violation]:
        """Record findings; print the ones not seen before. Returns the new ones."""
        new = []
        at = snapshot.at - self.started
        for finding in findings:
            with self._lock:
                known = self.violations.get(finding.key)
                if known is not None:
                    known.last_at, known.seen = at, known.seen + 1
                    continue
                violation = Violation(
                    finding.kind,
                    finding.key,
                    at,
                    snapshot.resource_version,
                    self.timeline.in_progress(snapshot.at),
                    finding.message,
                    finding.objects,
                    phase,
                    utc_clock(),
                    at,
                )
                self.violations[finding.key] = violation
            new.append(violation)
            self.out(violation.render(self.seed))
        return new

    def settle(self, timeout: float) -> tuple[float, list[Finding]]:
        """Poll until nothing is outstanding (quiet check) or ``timeout``; report what is left.
        Returns the seconds it took and the findings left."""
        began = time.monotonic()
        deadline = began + timeout
        left: list[Finding] = []
        snapshot = None
        while True:
            snapshot = self.snapshot() or snapshot
            if snapshot is not None:
                self.report(self._judge(snapshot, everything=True), snapshot, "quiet")
                left = self.checker.outstanding(snapshot, self.edits())
                if not left:
                    return time.monotonic() - began, []
            if time.monotonic() >= deadline:
                break
            time.sleep(self.interval)
        if snapshot is None:
            raise RuntimeError(f"the apiserver answered no audit in {timeout:.0f}s of quiet")
        self.report(left, snapshot, "quiet")
        return time.monotonic() - began, left


def _asks(pod: Mapping[str, Any]) -> bool:
    try:
        return not pod_demand(pod).is_zero()
    except UnknownSize:
        return True


class LeaseTracker:
    """Samples the daemons' Leases and judges the writes each replica's proxy forwarded
    (``leases.deposed_writes``). A write is judged once it is ``delay`` seconds old, so that a
    takeover that happened just before it has been sampled."""

    def __init__(self, kube: KubeApi, rig: Rig, delay: float = 3.0) -> None:
        self.kube = kube
        self.rig = rig
        self.delay = delay
        self.tenures: list[Tenure] = []
        self._seen: dict[str, int] = {}
        self._waiting: list[Write] = []

    def sample(self) -> None:
        for lease in sorted({self.rig.lease_of(slot) for slot in self.rig.slots.values()}):
            try:
                obj = self.kube.get(LEASES.path(namespace=self.rig.namespace, name=lease))
            except ApiError:
                continue
            spec = obj.get("spec") or {}
            holder, acquired = spec.get("holderIdentity"), spec.get("acquireTime")
            if not holder or not acquired:
                continue
            since = monotonic_of(str(acquired), time.time(), time.monotonic())
            if since is None:
                continue
            known = [t for t in self.tenures if t.lease == lease]
            if not known or known[-1].holder != holder or abs(known[-1].since - since) > 1.0:
                self.tenures.append(Tenure(lease, str(holder), since))

    def judge(self, everything: bool = False) -> list[Finding]:
        for name, slot in self.rig.slots.items():
            records = slot.proxy.records()
            start = self._seen.get(name, 0)
            self._seen[name] = len(records)
            self._waiting.extend(
                Write(name, r.at, r.method, r.path)
                for r in records[start:]
                if r.action == "forward" and is_leader_write(r.method, r.path)
            )
        ripe_before = math.inf if everything else time.monotonic() - self.delay
        ripe = [w for w in self._waiting if w.at < ripe_before]
        self._waiting = [w for w in self._waiting if w.at >= ripe_before]
        replicas = {
            name: [
                Incarnation(daemon.name, self.rig.lease_of(slot), identity_of(daemon), started)
                for started, daemon in slot.history
            ]
            for name, slot in self.rig.slots.items()
        }
        return deposed_writes(sorted(self.tenures, key=lambda t: t.since), ripe, replicas)
