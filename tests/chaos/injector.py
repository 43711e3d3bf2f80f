"""Carries out a fault plan against the rig, each fault on its own thread at its planned time.

Faults overlap as the plan has them, except where two would fight over one thing: each fault
holds locks on what it acts on (``apiserver``, a daemon ``slot``, a ``proxy``, a ``node``),
taken in one global order, so an apiserver kill waits for the previous one to finish and two
faults never both restart the same daemon. Each fault's window (start to last action) goes to
the :class:`~tests.chaos.timeline.FaultTimeline`; what it did (or why it could not: "no
Bandwidth object on chaos-0002") is printed as one ``CHAOS FAULT`` line.

Edits of a node's books are reported to the auditor (``Auditor.record_edit``) with the
resourceVersion the apiserver answered, before the fault's lock is released.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

from kubeio.errors import ApiError, Conflict, NotFound, Unreachable
from kubeio.resources import BANDWIDTHS, NODES, PODS
from tests.chaos.auditor import Auditor, utc_clock
from tests.chaos.load import Load
from tests.chaos.plan import PlannedFault
from tests.chaos.rig import Rig, Slot
from tests.chaos.timeline import FaultTimeline
from tests.chaos.workload import LOCAL_MBPS, NETWORK_MBPS

JSON = dict[str, Any]
T = TypeVar("T")

EDITS_OF_THE_BOOKS = frozenset(
    {"node_delete", "capacity_edit", "bogus_reservation", "bandwidth_delete"}
)
"""Faults that change a node's books: the auditor holds the node exempt while each is written
and recorded (``Auditor.editing``)."""

_AXES = {
    "network-ul": (("network", "ulMbps", NETWORK_MBPS),),
    "network-dl": (("network", "dlMbps", NETWORK_MBPS),),
    "network": (("network", "ulMbps", NETWORK_MBPS), ("network", "dlMbps", NETWORK_MBPS)),
    "local": (("local", "ulMbps", LOCAL_MBPS), ("local", "dlMbps", LOCAL_MBPS)),
}
_AXES["all"] = _AXES["network"] + _AXES["local"]


def _unanswered(error: Exception) -> bool:
    """The apiserver was away (killed by another fault): no answer at all."""
    if isinstance(error, ApiException):
        return not error.status
    return isinstance(error, Unreachable | urllib3.exceptions.HTTPError)


class Skipped(Exception):
    """The fault found nothing to act on; the message says why."""


class Injector:
    def __init__(
        self,
        rig: Rig,
        load: Load,
        auditor: Auditor,
        timeline: FaultTimeline,
        plan: tuple[PlannedFault, ...],
        seed: int,
        out: Callable[[str], None] = print,
    ) -> None:
        self.rig = rig
        self.load = load
        self.auditor = auditor
        self.timeline = timeline
        self.plan = plan
        self.rng = random.Random(f"inject-{seed}")
        self.out = out
        self.injected: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.log: list[str] = []
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._count_lock = threading.Lock()
        self.started = 0.0

    # ---------------------------------------------------------------------- schedule
    def run(self, started: float, stop: threading.Event) -> None:
        """Start each planned fault at ``started + at``; return when all are started (or
        ``stop`` is set)."""
        self.started = started
        for fault in self.plan:
            if stop.wait(max(0.0, started + fault.at - time.monotonic())):
                return
            thread = threading.Thread(
                target=self._execute, args=(fault,), name=f"fault-{fault.number}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def join(self, timeout: float) -> bool:
        """Wait for running faults to finish; False if some did not within ``timeout``."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _execute(self, fault: PlannedFault) -> None:
        label = f"#{fault.number} {fault.kind}"
        action = getattr(self, f"_{fault.kind}")
        edited = (
            self.auditor.editing(self._node(fault), label)
            if fault.kind in EDITS_OF_THE_BOOKS
            else contextlib.nullcontext()
        )
        try:
            with self._held(*self._resources(fault)), edited:
                began, clock = time.monotonic(), utc_clock()
                window = self.timeline.begin(label, began)
                try:
                    what = action(fault, label)
                finally:
                    self.timeline.end(window, time.monotonic())
        except Skipped as why:
            with self._count_lock:
                self.skipped[fault.kind] += 1
            self._say(f"CHAOS FAULT {fault.describe()} skipped: {why}")
            return
        except Exception as error:  # the soak goes on; the fault says what went wrong
            with self._count_lock:
                self.skipped[fault.kind] += 1
            outcome = (
                "skipped: the apiserver did not answer"
                if _unanswered(error)
                else f"failed: {type(error).__name__}: {error}"
            )
            self._say(f"CHAOS FAULT {fault.describe()} {outcome}")
            return
        with self._count_lock:
            self.injected[fault.kind] += 1
        self._say(
            f"CHAOS FAULT {fault.describe()} at t={began - self.started:.1f}s ({clock} UTC) "
            f"for {time.monotonic() - began:.1f}s: {what}"
        )

    def _say(self, line: str) -> None:
        with self._count_lock:
            self.log.append(line)
        self.out(line)

    @contextlib.contextmanager
    def _held(self, *names: str) -> Iterator[None]:
        with self._locks_lock:
            locks = [self._locks.setdefault(n, threading.Lock()) for n in sorted(set(names))]
        with contextlib.ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            yield

    def _resources(self, fault: PlannedFault) -> list[str]:
        kind, params = fault.kind, fault.params
        if kind in ("apiserver_kill",):
            return ["apiserver"]
        if kind == "watch_gap":
            return ["apiserver", "proxy:scheduler-a", "proxy:scheduler-b"]
        if kind == "scheduler_kill":
            return ["slot:scheduler"]
        if kind == "accounting_kill":
            return ["slot:accounting"]
        if kind in ("api_errors", "partition", "watch_drop"):
            return [f"proxy:{slot.name}" for slot in self._targets(str(params["target"]))]
        if kind in ("node_delete", "capacity_edit", "bogus_reservation", "bandwidth_delete"):
            return [f"node:{self._node(fault)}"]
        return []

    # ----------------------------------------------------------------------- helpers
    def _node(self, fault: PlannedFault) -> str:
        names = self.rig.node_names()
        return names[int(fault.params["node"]) % len(names)]

    def _targets(self, target: str) -> list[Slot]:
        if target == "all":
            return list(self.rig.slots.values())
        return [self.rig.slots[target]]

    def _bound_pods(self) -> list[JSON]:
        pods, _ = self.rig.kube.list(PODS.path(namespace=self.rig.namespace))
        return sorted(
            (
                p
                for p in pods
                if p["spec"].get("nodeName")
                and not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") != "Succeeded"
            ),
            key=lambda p: str(p["metadata"]["name"]),
        )

    def _pick(self, pods: list[JSON], share: float, count: int) -> list[JSON]:
        if not pods:
            raise Skipped("no bound pod")
        first = int(share * len(pods)) % len(pods)
        return [pods[(first + i) % len(pods)] for i in range(min(count, len(pods)))]

    def _recreate(self, pods: list[JSON]) -> list[str]:
        done = []
        for pod in pods:
            if self.load.delete(pod, 0):
                created = self.load.create(pod["metadata"]["name"])
                done.append(f"{pod['metadata']['name']}{'' if created else ' (recreated by load)'}")
        return done

    def _restart_apiserver(self) -> float:
        for attempt in range(3):
            try:
                return self.rig.restart_apiserver()
            except Exception:
                if attempt == 2:
                    raise
                time.sleep(2)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------------ faults
    def _apiserver_kill(self, fault: PlannedFault, label: str) -> str:
        self.rig.kill_apiserver()
        time.sleep(float(fault.params["down"]))
        starting = self._restart_apiserver()
        return (
            f"apiserver SIGKILLed, started again after {fault.params['down']}s "
            f"({starting:.1f}s to ready)"
        )

    def _kill_slot(self, slot: Slot, restart_after: float) -> str:
        with slot.lock:
            slot.held = True
            was = slot.daemon.name if slot.daemon else "?"
            slot.kill()
        try:
            time.sleep(restart_after)
        finally:
            with slot.lock:
                slot.start()
                slot.held = False
        now = slot.daemon.name if slot.daemon else "?"
        return f"{was} SIGKILLed; {now} started {restart_after}s later"

    def _scheduler_kill(self, fault: PlannedFault, label: str) -> str:
        leader = self.rig.leader("scheduler")
        schedulers = [s for s in self.rig.slots.values() if s.module == "scheduler"]
        if leader is None:
            victim = schedulers[0]
            role = "no leader known; "
        elif fault.params["target"] == "leader":
            victim, role = leader, "leader "
        else:
            victim = next(s for s in schedulers if s is not leader)
            role = "standby "
        return role + self._kill_slot(victim, float(fault.params["restart_after"]))

    def _accounting_kill(self, fault: PlannedFault, label: str) -> str:
        return self._kill_slot(self.rig.slots["accounting"], float(fault.params["restart_after"]))

    def _api_errors(self, fault: PlannedFault, label: str) -> str:
        statuses = tuple(int(s) for s in str(fault.params["statuses"]).split(","))
        seconds, share = float(fault.params["seconds"]), float(fault.params["share"])
        targets = self._targets(str(fault.params["target"]))
        before = {s.name: len(s.proxy.records()) for s in targets}
        for slot in targets:
            slot.proxy.inject(statuses, share, seconds)
        time.sleep(seconds)
        injected = {
            s.name: sum(1 for r in s.proxy.records()[before[s.name] :] if r.injected)
            for s in targets
        }
        return f"answered {injected} requests with {statuses}"

    def _partition(self, fault: PlannedFault, label: str) -> str:
        targets = self._targets(str(fault.params["target"]))
        for slot in targets:
            slot.proxy.partition()
        try:
            time.sleep(float(fault.params["seconds"]))
        finally:
            for slot in targets:
                slot.proxy.heal()
        return f"{[s.name for s in targets]} cut off for {fault.params['seconds']}s"

    def _watch_drop(self, fault: PlannedFault, label: str) -> str:
        targets = self._targets(str(fault.params["target"]))
        for slot in targets:
            slot.proxy.partition()
            slot.proxy.heal()
        return f"every connection of {[s.name for s in targets]} dropped"

    def _delete_exactly(self, path: str, what: str) -> tuple[JSON, list[str]]:
        """Delete the object as last read (a resourceVersion precondition). Returns it, and
        etcd's revisions just before and just after the delete. The apiserver answers a
        DELETE of a node or a custom resource with a Status, not the object: the auditor
        needs what was deleted, and what was charged around that moment."""
        for _ in range(10):
            try:
                current = self.rig.kube.get(path)
                before = self.auditor.current_revision()
                version = current["metadata"]["resourceVersion"]
                self.rig.kube.delete(path, preconditions={"resourceVersion": version})
            except NotFound as error:
                raise Skipped(f"{what} is already gone") from error
            except Conflict:
                continue
            return current, [before, self.auditor.current_revision()]
        raise Skipped(f"{what} changed under 10 deletes in a row")

    def _node_delete(self, fault: PlannedFault, label: str) -> str:
        node = self._node(fault)
        _, around = self._delete_exactly(NODES.path(name=node), f"node {node}")
        self.auditor.record_edit(node, label, around)
        gc_after, readd_after = float(fault.params["gc_after"]), float(fault.params["readd_after"])
        collected: list[str] = []
        if gc_after < readd_after:
            time.sleep(gc_after)
            collected = self._persist(lambda: self._collect(node))
            time.sleep(readd_after - gc_after)
        else:
            time.sleep(readd_after)
        self._persist(lambda: self.rig.add_node(self.rig.node_names().index(node)))
        kept = "" if collected else " (its pods kept: back before the pod GC)"
        return f"{node} deleted, {len(collected)} pods collected, back after {readd_after}s{kept}"

    def _collect(self, node: str) -> list[str]:
        """The pod garbage collector: pods bound to a node that is gone are deleted."""
        pods, _ = self.rig.kube.list(PODS.path(namespace=self.rig.namespace))
        gone = []
        for pod in pods:
            if pod["spec"].get("nodeName") == node and self.load.delete(pod, 0):
                gone.append(pod["metadata"]["name"])
        return gone

    def _persist(self, step: Callable[[], T]) -> T:
        """``step`` again until the apiserver answers it (for 60 s): the soak may have
        killed it meanwhile, and a node left deleted would end this fault's story early."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return step()
            except (ApiError, ApiException, urllib3.exceptions.HTTPError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def _pod_recreate(self, fault: PlannedFault, label: str) -> str:
        pods = self._pick(
            self._bound_pods(), float(fault.params["share"]), int(fault.params["count"])
        )
        return f"recreated {self._recreate(pods)}"

    def _watch_gap(self, fault: PlannedFault, label: str) -> str:
        schedulers = [s for s in self.rig.slots.values() if s.module == "scheduler"]
        for slot in schedulers:
            slot.proxy.partition()
        try:
            time.sleep(1.0)
            pods = self._pick(
                self._bound_pods(), float(fault.params["share"]), int(fault.params["count"])
            )
            recreated = self._recreate(pods)
            time.sleep(2.0)  # the accounting controller releases the old UIDs meanwhile
            self.rig.kill_apiserver()
            starting = self._restart_apiserver()
        finally:
            for slot in schedulers:
                slot.proxy.heal()
        return f"schedulers cut off; recreated {recreated}; apiserver restarted ({starting:.1f}s)"

    def _bandwidth_of(self, node: str) -> JSON:
        try:
            return self.rig.kube.get(BANDWIDTHS.path(name=node))
        except NotFound as error:
            raise Skipped(f"no Bandwidth object on {node}") from error

    def _capacity_edit(self, fault: PlannedFault, label: str) -> str:
        node = self._node(fault)
        self._bandwidth_of(node)
        factor = float(fault.params["factor"])
        capacity: dict[str, dict[str, int]] = {}
        for datapath, direction, original in _AXES[str(fault.params["axes"])]:
            capacity.setdefault(datapath, {})[direction] = round(original * factor)
        try:
            edited = self.rig.kube.patch(
                BANDWIDTHS.path(name=node), {"spec": {"capacity": capacity}}
            )
        except NotFound as error:
            raise Skipped(f"no Bandwidth object on {node}") from error
        self._record_write(node, label, edited)
        return f"{node} spec.capacity set to {capacity}"

    def _record_write(self, node: str, label: str, edited: JSON) -> None:
        """A write that changes nothing answers the object's older resourceVersion: the
        revision after it is taken too."""
        written = str(edited["metadata"]["resourceVersion"])
        self.auditor.record_edit(node, label, [written, self.auditor.current_revision()], edited)

    def _bogus_reservation(self, fault: PlannedFault, label: str) -> str:
        node = self._node(fault)
        made_up = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        mbps = int(fault.params["mbps"])
        entry: JSON = {
            "podUID": made_up,
            "podNamespace": self.rig.namespace,
            "linkLocal": False,
            "bandwidth": {"ulMbps": mbps, "dlMbps": mbps},
        }
        if fault.params["variant"] == "wrong_uid":
            pods = self._pick(self._bound_pods(), float(fault.params["share"]), 1)
            entry["podName"] = pods[0]["metadata"]["name"]
            entry["reservedAt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            entry["podName"] = f"ghost-{made_up[:8]}"
        for _ in range(10):
            current = self._bandwidth_of(node)
            reservations = list((current.get("spec") or {}).get("reservations") or [])
            try:
                edited = self.rig.kube.patch(
                    BANDWIDTHS.path(name=node),
                    {
                        "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                        "spec": {"reservations": [*reservations, entry]},
                    },
                )
            except Conflict:
                continue
            except NotFound as error:
                raise Skipped(f"no Bandwidth object on {node}") from error
            self._record_write(node, label, edited)
            return f"{node} got a reservation for {entry['podName']} uid={made_up} ({mbps} Mbps)"
        raise Skipped(f"{node}'s Bandwidth changed under 10 edits in a row")

    def _bandwidth_delete(self, fault: PlannedFault, label: str) -> str:
        node = self._node(fault)
        gone, around = self._delete_exactly(BANDWIDTHS.path(name=node), f"Bandwidth {node}")
        self.auditor.record_edit(node, label, around, gone)
        held = len((gone.get("spec") or {}).get("reservations") or [])
        return f"Bandwidth {node} deleted with {held} reservations"
