"""Who held each Lease when, and which writes came from a replica that did not. Pure.

The promise (issue #11): a leader that cannot renew its Lease stops writing before the Lease
can expire, so when a standby takes the Lease over, the old leader has already gone quiet.
The auditor samples each Lease (``holderIdentity``, ``acquireTime``) and keeps every change
of holder as a :class:`Tenure`; each daemon's fault proxy records every request it forwards.
A write (POST, PUT, PATCH, DELETE other than of Leases and Events) that reached the proxy while
*another* identity held the Lease, more than ``margin`` seconds after that identity acquired
it, is a ``deposed_write``: two replicas acting as leader at once.

Where the check can miss something: a holder that changed twice between two samples (about a
second apart) is seen once; writes of a process whose identity is not yet known are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from tests.chaos.books import DEPOSED_WRITE, Finding

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Tenure:
    lease: str
    holder: str
    since: float
    """``time.monotonic()`` of the Lease's ``acquireTime``."""


@dataclass(frozen=True, slots=True)
class Incarnation:
    """One process of a replica: its log name, Lease identity and start."""

    name: str
    lease: str
    identity: str
    started: float


@dataclass(frozen=True, slots=True)
class Write:
    replica: str
    """The slot whose proxy saw it."""
    at: float
    method: str
    path: str


def is_leader_write(method: str, path: str) -> bool:
    """A write only the leader may make. Lease writes (the election itself: a create or an
    update, both conditional) and Events are anyone's."""
    resources = set(path.split("?", 1)[0].split("/"))
    return method in WRITE_METHODS and not resources & {"leases", "events"}


def monotonic_of(stamp: str, now_wall: float, now_monotonic: float) -> float | None:
    """An RFC 3339 time (``2026-11-26T04:16:26.599441Z``) on the monotonic clock."""
    try:
        wall = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None
    return now_monotonic - (now_wall - wall)


def holder_at(tenures: Sequence[Tenure], lease: str, at: float) -> Tenure | None:
    found = None
    for tenure in tenures:
        if tenure.lease == lease and tenure.since <= at:
            found = tenure
    return found


def deposed_writes(
    tenures: Sequence[Tenure],
    writes: Iterable[Write],
    replica_of: Mapping[str, Sequence[Incarnation]],
    margin: float = 0.5,
) -> list[Finding]:
    """One finding per process that wrote while another identity held its Lease.

    ``replica_of`` maps a slot name to its incarnations in start order; a write belongs to the
    last one started before it.
    """
    found: dict[str, list[tuple[Write, Tenure]]] = {}
    for write in writes:
        if not is_leader_write(write.method, write.path):
            continue
        owner = None
        for incarnation in replica_of.get(write.replica, []):
            if incarnation.started <= write.at:
                owner = incarnation
        if owner is None or not owner.identity:
            continue
        tenure = holder_at(tenures, owner.lease, write.at)
        if tenure is None or tenure.holder == owner.identity:
            continue
        if write.at - tenure.since > margin:
            found.setdefault(owner.name, []).append((write, tenure))
    findings = []
    for name, hits in found.items():
        tenure = hits[0][1]
        findings.append(
            Finding(
                DEPOSED_WRITE,
                f"deposed:{name}",
                f"{name} wrote {len(hits)} time(s) while {tenure.holder} held the Lease "
                f"{tenure.lease}",
                tuple(
                    f"{w.method} {w.path} {w.at - t.since:.1f}s after {t.holder} acquired it"
                    for w, t in hits[:5]
                ),
            )
        )
    return findings
