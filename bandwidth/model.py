"""The Bandwidth custom resource as typed values.

Reading is tolerant: a hand-edited object with a malformed reservation still yields the rest,
with the bad entries listed in ``problems``. Writing is exact: the dictionaries built here are
what the scheduler and the accounting controller send to the apiserver.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bandwidth.budget import LinkBudget, Usage
from bandwidth.request import BandwidthRequest

GROUP = "networking.vaclab.org"
VERSION = "v1"
PLURAL = "bandwidths"
KIND = "Bandwidth"
API_VERSION = f"{GROUP}/{VERSION}"

JSON = dict[str, Any]

MAX_RESERVATIONS = 900
"""Reservations one Bandwidth object holds at most: the CRD's ``maxItems``. Measured on
kube-apiserver v1.37.2 with etcd's default ``--max-request-bytes`` (1.5 MiB): with the longest
names the API allows (253-character pod, scheduler and workload names, 63-character
namespaces) and the matching ``status.reservations``, 958 fit and the 959th is refused as "too
large"; with short names 3069 do (``docs/design.md``). A node never runs that many pods."""


class MalformedBandwidth(ValueError):
    """A Bandwidth object whose capacity cannot be read: nothing can be scheduled against it."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Bandwidth held on a node for one pod, keyed by the pod's UID."""

    pod_uid: str
    pod_name: str
    pod_namespace: str
    request: BandwidthRequest
    scheduler: str = ""
    reserved_at: datetime | None = None

    def to_json(self) -> JSON:
        entry: JSON = {
            "podName": self.pod_name,
            "podNamespace": self.pod_namespace,
            "podUID": self.pod_uid,
            "linkLocal": self.request.link_local,
            "bandwidth": {"ulMbps": self.request.ul_mbps, "dlMbps": self.request.dl_mbps},
        }
        if self.scheduler:
            entry["scheduler"] = self.scheduler
        if self.reserved_at is not None:
            entry["reservedAt"] = format_time(self.reserved_at)
        return entry

    def fence_token(self, node: str) -> str:
        """What names this reservation on a pod fenced before its release (``kubeio.fencing``):
        the node and ``reservedAt``, which every renewal moves."""
        stamp = format_time(self.reserved_at) if self.reserved_at is not None else "-"
        return f"{node} {stamp}"

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> Reservation:
        """Raises ``ValueError`` naming what is wrong with the entry."""
        uid = entry.get("podUID")
        if not isinstance(uid, str) or not uid:
            raise ValueError("reservation without podUID")
        link = entry.get("bandwidth") or {}
        if not isinstance(link, Mapping):
            raise ValueError(f"reservation {uid}: bandwidth is not an object")
        return cls(
            pod_uid=uid,
            pod_name=str(entry.get("podName", "")),
            pod_namespace=str(entry.get("podNamespace", "")),
            request=BandwidthRequest(
                ul_mbps=_mbps(link.get("ulMbps", 0), f"reservation {uid} ulMbps"),
                dl_mbps=_mbps(link.get("dlMbps", 0), f"reservation {uid} dlMbps"),
                link_local=bool(entry.get("linkLocal", False)),
            ),
            scheduler=str(entry.get("scheduler", "")),
            reserved_at=parse_time(entry.get("reservedAt")),
        )


@dataclass(frozen=True, slots=True)
class NodeBandwidth:
    """One Bandwidth object: a node's capacity and the reservations held against it."""

    name: str
    node: str
    capacity: Usage
    reservations: Mapping[str, Reservation]
    resource_version: str = ""
    generation: int = 0
    uid: str = ""
    problems: tuple[str, ...] = field(default=())

    def reserved(self) -> Usage:
        total = Usage()
        for reservation in self.reservations.values():
            total = total + reservation.request.charge()
        return total


def _mbps(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} is not a whole number of Mbps >= 0: {value!r}")
    return value


def _link(raw: Any, what: str) -> LinkBudget:
    if not isinstance(raw, Mapping):
        raise MalformedBandwidth(f"{what} is missing")
    try:
        return LinkBudget(
            _mbps(raw.get("ulMbps"), f"{what}.ulMbps"), _mbps(raw.get("dlMbps"), f"{what}.dlMbps")
        )
    except ValueError as error:
        raise MalformedBandwidth(str(error)) from error


def parse_capacity(spec: Mapping[str, Any]) -> Usage:
    capacity = spec.get("capacity")
    if not isinstance(capacity, Mapping):
        raise MalformedBandwidth("spec.capacity is missing")
    return Usage(
        local=_link(capacity.get("local"), "spec.capacity.local"),
        network=_link(capacity.get("network"), "spec.capacity.network"),
    )


def parse_bandwidth(obj: Mapping[str, Any]) -> NodeBandwidth:
    """Typed view of a Bandwidth object; raises ``MalformedBandwidth`` without a capacity."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    name = str(metadata.get("name", ""))
    reservations: dict[str, Reservation] = {}
    problems: list[str] = []
    raw_reservations = spec.get("reservations") or []
    if not isinstance(raw_reservations, list):
        problems.append("spec.reservations is not a list")
        raw_reservations = []
    named = spec.get("node")
    if named and named != name:
        # Every writer addresses a node's object by the node's name: one named otherwise is
        # no node's ledger, whatever spec.node says.
        problems.append(f"spec.node {named!r} is not the object's name {name!r}; ignored")
    for entry in raw_reservations:
        try:
            reservation = Reservation.from_json(entry if isinstance(entry, Mapping) else {})
        except ValueError as error:
            problems.append(str(error))
            continue
        first = reservations.get(reservation.pod_uid)
        if first is not None:
            # The list is atomic (one write per ledger is half the apiserver's work of a map
            # keyed by podUID), so the apiserver no longer refuses a second entry for a pod.
            # Charge the larger of the two on every axis: a node is never under-charged.
            problems.append(f"duplicate reservation for pod UID {reservation.pod_uid}")
            reservations[reservation.pod_uid] = _larger_of(first, reservation)
            continue
        written = entry.get("reservedAt") if isinstance(entry, Mapping) else None
        if written and reservation.reserved_at is None:
            problems.append(
                f"reservation {reservation.pod_uid}: reservedAt {written!r} is not a time in "
                "range; its grace counts from when it was first seen"
            )
        reservations[reservation.pod_uid] = reservation
    return NodeBandwidth(
        name=name,
        node=name,
        capacity=parse_capacity(spec),
        reservations=reservations,
        resource_version=str(metadata.get("resourceVersion", "")),
        generation=int(metadata.get("generation", 0) or 0),
        uid=str(metadata.get("uid", "")),
        problems=tuple(problems),
    )


def _larger_of(first: Reservation, second: Reservation) -> Reservation:
    """``first``, charged the larger request of the two on each axis (on the NIC as well if
    either is)."""
    request = BandwidthRequest(
        ul_mbps=max(first.request.ul_mbps, second.request.ul_mbps),
        dl_mbps=max(first.request.dl_mbps, second.request.dl_mbps),
        link_local=first.request.link_local and second.request.link_local,
    )
    return replace(first, request=request)


def capacity_json(capacity: Usage) -> JSON:
    return {
        "local": {"ulMbps": capacity.local.ul_mbps, "dlMbps": capacity.local.dl_mbps},
        "network": {"ulMbps": capacity.network.ul_mbps, "dlMbps": capacity.network.dl_mbps},
    }


def new_bandwidth_object(
    node: str,
    capacity: Usage,
    labels: Mapping[str, str] | None = None,
    reservations: Iterable[Reservation] = (),
) -> JSON:
    """The object the accounting controller creates for a node."""
    metadata: JSON = {"name": node}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "node": node,
            "capacity": capacity_json(capacity),
            "reservations": reservations_json(reservations),
        },
    }


def reservations_json(reservations: Iterable[Reservation]) -> list[JSON]:
    """The reservation list as stored: ordered by namespace, name and UID."""
    ordered = sorted(reservations, key=lambda r: (r.pod_namespace, r.pod_name, r.pod_uid))
    return [r.to_json() for r in ordered]


def reservations_patch(reservations: Iterable[Reservation]) -> list[JSON]:
    """JSON Patch operations that set the reservation list (``reservations_json``).

    Writers send them behind a test of ``metadata.uid`` and ``metadata.generation``
    (``kubeio.guarded``), so the list is never replaced on a stale view of the spec.
    """
    return [{"op": "add", "path": "/spec/reservations", "value": reservations_json(reservations)}]


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC, whole seconds; ``moment`` as ``parse_time`` returns it (aware, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(raw: Any) -> datetime | None:
    """An RFC 3339 time (``reservedAt``, ``creationTimestamp``, a condition's time) as an aware
    datetime in UTC; None when absent, unreadable, or beyond what a datetime holds once in UTC
    (``9999-12-31T23:59:59-01:00`` is in the year 10000). Every time both daemons read comes
    through here, so arithmetic on the result can overflow only at the edges of the calendar,
    which ``later`` guards."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def later(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, or the end of the calendar rather than ``OverflowError``."""
    try:
        return moment + delta
    except OverflowError:
        return END_OF_TIME if delta > timedelta(0) else datetime.min.replace(tzinfo=UTC)
