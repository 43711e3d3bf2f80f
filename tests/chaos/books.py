"""The auditor's judgement of one consistent snapshot of the cluster. Pure: no client.

A :class:`Snapshot` holds the soak's pods, nodes and Bandwidth objects as read at one etcd
revision (``auditor.read_snapshot`` lists all three at the same resourceVersion, so no check
ever compares a pod from one moment with a ledger from another). :class:`Checker` looks at it
with its own reading of requests (``workload.SIZES``) and of the ledger (:func:`read_ledger`),
not with the code under test.

What is promised, and the kind of finding when it is not:

``over_capacity``
    On every node, what is promised (every ledger entry, plus every live pod bound there with
    a request: terminating pods still hold their bandwidth; a pod counted once, at the larger
    of its entry and its request) fits the node's ``spec.capacity`` on all four axes.
    *Tolerance*: none, except after the chaos itself changed the node's capacity or ledger
    (:class:`ChaosEdit`): then the node may stay over capacity with the pods that were charged
    on it at that moment, and no other. A pod admitted since is a violation.
``unreserved``
    Every live pod of ours bound to a live node with a request has an entry with its UID in
    that node's ledger. *Tolerance*: none; while the node has no Bandwidth object at all, its
    pods are judged by ``missing_bandwidth`` instead.
``short_reservation``
    That entry holds at least what the pod asks, and is link-local only if the pod is.
``stale_reservation``
    No entry outlives its pod (gone, recreated under a new UID, finished, or bound to another
    node) by more than ``Tolerances.stale_seconds`` of calm time; an entry of a pod that stays
    unbound is allowed the accounting controller's unbound grace on top. A Bandwidth object of a
    node that is gone counts too. *Why a tolerance*: the accounting controller releases entries
    from what its watches tell it; it cannot while it is dead, not leading, partitioned or
    relisting, and an entry of an unbound pod is the normal state between reserve and bind.
``missing_bandwidth``
    Every live node has its Bandwidth object (with a readable capacity) within
    ``Tolerances.missing_bandwidth_seconds`` of calm time. *Why*: the accounting controller
    creates it after the node appears or the object is deleted.
``pending_fits`` (only once the cluster is quiet)
    No pod of ours waits while some node it may run on has the room for it.

Where the check can miss something: a state that appears and vanishes between two snapshots
(the auditor reads about once a second); pods bound to a node that is gone are not judged
(they are the pod garbage collector's, as in a real cluster); while a node is exempt after a
chaos edit, a pod admitted there is found, but a pod already charged there that is re-admitted
under a new reservation is not; during faults, leaks younger than the tolerance are invisible
until the cluster is quiet (the final check has no tolerance).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.workload import (
    ZERO,
    Charge,
    Demand,
    UnknownSize,
    add,
    at_most,
    describe,
    over_axes,
    pod_demand,
    sub,
)

JSON = dict[str, Any]

OVER_CAPACITY = "over_capacity"
UNRESERVED = "unreserved"
SHORT_RESERVATION = "short_reservation"
STALE_RESERVATION = "stale_reservation"
MISSING_BANDWIDTH = "missing_bandwidth"
PENDING_FITS = "pending_fits"
DEPOSED_WRITE = "deposed_write"
"""Judged by ``leases``, not here: a write by a replica that did not hold its Lease."""
KINDS = (
    OVER_CAPACITY,
    UNRESERVED,
    SHORT_RESERVATION,
    STALE_RESERVATION,
    MISSING_BANDWIDTH,
    PENDING_FITS,
    DEPOSED_WRITE,
)

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    """``time.monotonic()`` when it was read."""
    resource_version: str
    pods: tuple[JSON, ...]
    nodes: Mapping[str, Mapping[str, str]]
    """Live nodes of the soak, by name, with their labels."""
    bandwidths: Mapping[str, JSON]
    """The soak's Bandwidth objects, by name."""


@dataclass(frozen=True, slots=True)
class ChaosEdit:
    """The chaos changed a node's capacity or ledger (or deleted the object or the node);
    ``charged`` are the pod UIDs promised on it at that revision."""

    node: str
    fault: str
    charged: frozenset[str]
    settling: bool = False
    """The edit is being written or its revisions read: until it is recorded, the node is
    exempt as a whole (a pod admitted meanwhile is found once the edit is recorded)."""


@dataclass(frozen=True, slots=True)
class Tolerances:
    stale_seconds: float = 15.0
    unbound_grace_seconds: float = 10.0
    """The accounting controller's ``--unbound-reservation-grace``."""
    missing_bandwidth_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    key: str
    """Identity of the finding across snapshots (the same node, the same pod UID)."""
    message: str
    objects: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Entry:
    uid: str
    pod: str
    """``namespace/name`` as written in the entry."""
    demand: Demand


@dataclass(frozen=True, slots=True)
class Ledger:
    name: str
    capacity: Charge | None
    """``None`` when ``spec.capacity`` cannot be read."""
    entries: Mapping[str, Entry]


def _mbps(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_ledger(obj: Mapping[str, Any]) -> Ledger:
    """The auditor's own reading of a Bandwidth object (first entry wins on a repeated UID)."""
    spec = obj.get("spec") or {}
    name = str((obj.get("metadata") or {}).get("name", ""))
    capacity: Charge | None = None
    raw = spec.get("capacity") if isinstance(spec, Mapping) else None
    if isinstance(raw, Mapping):
        values = [
            _mbps((raw.get(datapath) or {}).get(direction))
            if isinstance(raw.get(datapath), Mapping)
            else None
            for datapath in ("network", "local")
            for direction in ("ulMbps", "dlMbps")
        ]
        if all(v is not None for v in values):
            capacity = (values[0] or 0, values[1] or 0, values[2] or 0, values[3] or 0)
    entries: dict[str, Entry] = {}
    for item in spec.get("reservations") or [] if isinstance(spec, Mapping) else []:
        if not isinstance(item, Mapping) or not isinstance(item.get("podUID"), str):
            continue
        raw_link = item.get("bandwidth")
        link: Mapping[str, Any] = raw_link if isinstance(raw_link, Mapping) else {}
        entries.setdefault(
            item["podUID"],
            Entry(
                uid=item["podUID"],
                pod=f"{item.get('podNamespace', '')}/{item.get('podName', '')}",
                demand=Demand(
                    _mbps(link.get("ulMbps")) or 0,
                    _mbps(link.get("dlMbps")) or 0,
                    item.get("linkLocal") is True,
                ),
            ),
        )
    return Ledger(name, capacity, entries)


def _meta(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return pod.get("metadata") or {}


def pod_key(pod: Mapping[str, Any]) -> str:
    return f"{_meta(pod).get('namespace', '')}/{_meta(pod).get('name', '')}"


def _terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL_PHASES


def _node_of(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _describe_pod(pod: Mapping[str, Any], demand: Demand | None) -> str:
    meta = _meta(pod)
    state = []
    if _node_of(pod):
        state.append(f"bound to {_node_of(pod)}")
    else:
        state.append("unbound")
    if meta.get("deletionTimestamp"):
        state.append("terminating")
    phase = (pod.get("status") or {}).get("phase")
    if phase:
        state.append(str(phase))
    asks = describe(demand.charge()) if demand is not None else "unknown request"
    return f"pod {pod_key(pod)} uid={meta.get('uid')} {', '.join(state)}; asks {asks}"


def _max(left: Charge, right: Charge) -> Charge:
    return (
        max(left[0], right[0]),
        max(left[1], right[1]),
        max(left[2], right[2]),
        max(left[3], right[3]),
    )


@dataclass(slots=True)
class _Examined:
    safety: list[Finding] = field(default_factory=list)
    conditions: list[tuple[Finding, float]] = field(default_factory=list)
    """Findings allowed to last the given calm seconds."""
    pending_fits: list[Finding] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


class Checker:
    """Judges snapshots in order, remembering since when each tolerated condition holds.

    ``calm(since, until)`` gives the calm seconds between two instants
    (``timeline.FaultTimeline.calm_seconds``).
    """

    def __init__(
        self,
        scheduler_name: str,
        tolerances: Tolerances,
        calm: Callable[[float, float], float],
    ) -> None:
        self.scheduler_name = scheduler_name
        self.tolerances = tolerances
        self._calm = calm
        self._since: dict[str, float] = {}
        self.unknown_requests: set[str] = set()

    def check(self, snapshot: Snapshot, edits: Mapping[str, ChaosEdit]) -> list[Finding]:
        """Violations now: every safety finding, and conditions older than their tolerance."""
        examined = self._examine(snapshot, edits)
        seen = {finding.key for finding, _ in examined.conditions}
        for key in list(self._since):
            if key not in seen:
                del self._since[key]
        found = list(examined.safety)
        for finding, tolerance in examined.conditions:
            since = self._since.setdefault(finding.key, snapshot.at)
            if self._calm(since, snapshot.at) > tolerance:
                found.append(finding)
        return found

    def outstanding(self, snapshot: Snapshot, edits: Mapping[str, ChaosEdit]) -> list[Finding]:
        """What must be gone once the cluster is quiet: every finding, no tolerance, and
        every pending pod that fits somewhere."""
        examined = self._examine(snapshot, edits)
        return [
            *examined.safety,
            *(finding for finding, _ in examined.conditions),
            *examined.pending_fits,
        ]

    # ------------------------------------------------------------------------------ rules
    def _demand(self, pod: Mapping[str, Any]) -> Demand | None:
        try:
            return pod_demand(pod)
        except UnknownSize as error:
            self.unknown_requests.add(f"{pod_key(pod)}: {error}")
            return None

    def _examine(self, snapshot: Snapshot, edits: Mapping[str, ChaosEdit]) -> _Examined:
        out = _Examined()
        pods = snapshot.pods
        by_uid = {str(_meta(p).get("uid")): p for p in pods}
        live = [p for p in pods if not _terminal(p)]
        demands = {str(_meta(p).get("uid")): self._demand(p) for p in live}
        bound_to: dict[str, list[Mapping[str, Any]]] = {}
        for pod in live:
            if _node_of(pod):
                bound_to.setdefault(_node_of(pod), []).append(pod)
        free: dict[str, Charge] = {}
        for node in sorted(snapshot.nodes):
            raw = snapshot.bandwidths.get(node)
            ledger = read_ledger(raw) if raw is not None else None
            if ledger is None or ledger.capacity is None:
                what = "no Bandwidth object" if ledger is None else "an unreadable capacity"
                on_node = [
                    _describe_pod(p, demands.get(str(_meta(p).get("uid"))))
                    for p in bound_to.get(node, [])
                ]
                out.conditions.append(
                    (
                        Finding(
                            MISSING_BANDWIDTH,
                            f"missing:{node}",
                            f"node {node} has {what}",
                            tuple(on_node),
                        ),
                        self.tolerances.missing_bandwidth_seconds,
                    )
                )
                continue
            used = self._judge_node(node, ledger, bound_to.get(node, []), demands, edits, out)
            free[node] = sub(ledger.capacity, used)
            self._judge_entries(node, ledger, by_uid, live, out)
        for name, raw in sorted(snapshot.bandwidths.items()):
            if name not in snapshot.nodes:
                held = read_ledger(raw).entries
                out.conditions.append(
                    (
                        Finding(
                            STALE_RESERVATION,
                            f"orphan:{name}",
                            f"Bandwidth {name} outlives its node, holding {len(held)} "
                            "reservation(s)",
                            tuple(f"entry {e.pod} uid={e.uid}" for e in held.values()),
                        ),
                        self.tolerances.stale_seconds,
                    )
                )
        self._judge_pending(snapshot, live, demands, free, out)
        return out

    def _judge_node(
        self,
        node: str,
        ledger: Ledger,
        bound: list[Mapping[str, Any]],
        demands: Mapping[str, Demand | None],
        edits: Mapping[str, ChaosEdit],
        out: _Examined,
    ) -> Charge:
        assert ledger.capacity is not None
        charged: dict[str, Charge] = {uid: e.demand.charge() for uid, e in ledger.entries.items()}
        who: dict[str, str] = {uid: f"entry {e.pod} uid={uid}" for uid, e in ledger.entries.items()}
        for pod in bound:
            uid = str(_meta(pod).get("uid"))
            demand = demands.get(uid)
            if demand is None or demand.is_zero():
                continue
            who[uid] = _describe_pod(pod, demand)
            entry = ledger.entries.get(uid)
            ours = (pod.get("spec") or {}).get("schedulerName") == self.scheduler_name
            if entry is None:
                charged[uid] = demand.charge()
                if ours:
                    out.safety.append(
                        Finding(
                            UNRESERVED,
                            f"unreserved:{uid}",
                            f"pod {pod_key(pod)} is bound to {node} with no reservation there",
                            (who[uid],),
                        )
                    )
                continue
            charged[uid] = _max(charged[uid], demand.charge())
            if not at_most(demand.charge(), entry.demand.charge()):
                out.safety.append(
                    Finding(
                        SHORT_RESERVATION,
                        f"short:{uid}",
                        f"pod {pod_key(pod)} on {node} holds less than it asks: entry "
                        f"{describe(entry.demand.charge())}",
                        (who[uid],),
                    )
                )
        used = ZERO
        for charge in charged.values():
            used = add(used, charge)
        over = over_axes(used, ledger.capacity)
        if over:
            edit = edits.get(node)
            if edit is not None and edit.settling:
                return used
            admitted = sorted(set(charged) - (edit.charged if edit else set()))
            if admitted:
                since = f" since {edit.fault}" if edit else ""
                out.safety.append(
                    Finding(
                        OVER_CAPACITY,
                        f"over:{node}:{','.join(admitted)}",
                        f"node {node} is over capacity on {', '.join(over)}: promised "
                        f"{describe(used)} of {describe(ledger.capacity)}; "
                        f"{len(admitted)} pod(s) admitted{since} not exempt",
                        tuple(
                            ("NEW " if uid in admitted else "") + who[uid]
                            for uid in sorted(charged)
                        ),
                    )
                )
        return used

    def _judge_entries(
        self,
        node: str,
        ledger: Ledger,
        by_uid: Mapping[str, Mapping[str, Any]],
        live: Sequence[Mapping[str, Any]],
        out: _Examined,
    ) -> None:
        by_name = {pod_key(p): p for p in live}
        for uid, entry in ledger.entries.items():
            pod = by_uid.get(uid)
            tolerance = self.tolerances.stale_seconds
            if pod is None:
                same_name = by_name.get(entry.pod)
                reason = (
                    f"pod gone; {entry.pod} now has uid={_meta(same_name).get('uid')}"
                    if same_name is not None
                    else "pod gone"
                )
            elif _terminal(pod):
                reason = f"pod finished ({(pod.get('status') or {}).get('phase')})"
            elif _node_of(pod) and _node_of(pod) != node:
                reason = f"pod bound to {_node_of(pod)}"
            elif not _node_of(pod):
                reason = "pod still unbound"
                tolerance += self.tolerances.unbound_grace_seconds
            else:
                continue
            out.conditions.append(
                (
                    Finding(
                        STALE_RESERVATION,
                        f"stale:{node}:{uid}",
                        f"{node} holds a reservation for {entry.pod} uid={uid}: {reason}",
                        (f"entry {entry.pod} uid={uid} {describe(entry.demand.charge())}",),
                    ),
                    tolerance,
                )
            )

    def _judge_pending(
        self,
        snapshot: Snapshot,
        live: Sequence[Mapping[str, Any]],
        demands: Mapping[str, Demand | None],
        free: Mapping[str, Charge],
        out: _Examined,
    ) -> None:
        for pod in live:
            meta = _meta(pod)
            spec = pod.get("spec") or {}
            if _node_of(pod) or meta.get("deletionTimestamp"):
                continue
            if spec.get("schedulerName") != self.scheduler_name:
                continue
            demand = demands.get(str(meta.get("uid")))
            if demand is None:
                continue
            selector = spec.get("nodeSelector") or {}
            for node, room in sorted(free.items()):
                labels = snapshot.nodes.get(node) or {}
                if any(labels.get(k) != v for k, v in selector.items()):
                    continue
                if at_most(demand.charge(), room):
                    waiting = next(
                        (
                            c.get("message", "")
                            for c in (pod.get("status") or {}).get("conditions") or []
                            if c.get("type") == "PodScheduled"
                        ),
                        "",
                    )
                    out.pending_fits.append(
                        Finding(
                            PENDING_FITS,
                            f"pending:{meta.get('uid')}",
                            f"pod {pod_key(pod)} is pending although {node} has room: free "
                            f"{describe(room)}",
                            (
                                _describe_pod(pod, demand),
                                f"PodScheduled: {waiting or '(no condition)'}",
                            ),
                        )
                    )
                    break
