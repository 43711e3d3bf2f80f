"""Releasing stale reservations: the books decide, the apiserver confirms, a guarded write
removes them.

One settle of a node's ledger::

    parse ─► keep_books ─► a release rests on an absence (PodDeleted, NeverBound)?
                 ▲            └─ confirm it with the apiserver: a GET of the pod, or for
                 │               NeverBound the fence (kubeio.fencing), whose answer is the
                 │               fresh look — then keep_books again
                 │        ─► patch spec.reservations without them, testing UID and generation
                 │             ├─ conflict: the object as it is now
                 └─────────────┴─ written: the object as written; pods are read afresh
    at most 8 rounds, then ReleaseContention (the reconcile is retried with back-off)

So a reservation the scheduler writes, or a pod it binds, at the same moment is never erased,
and a binding still on its way never lands on a pod whose reservation is gone.

A reservation that is not dated (``books.dated``) counts its grace from when this controller
first saw it (``first_seen``, forgotten with the reservation).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from accounting.books import Books, Release, ReleaseReason, dated, keep_books
from accounting.metrics import AccountingMetrics
from accounting.pods import Workload
from accounting.settings import AccountingSettings
from bandwidth.dra import DraHolding
from bandwidth.model import (
    API_VERSION,
    KIND,
    MalformedBandwidth,
    NodeBandwidth,
    parse_bandwidth,
    reservations_patch,
)
from kubeio.errors import Conflict, NotFound
from kubeio.events import NORMAL, EventRecorder, ObjectRef
from kubeio.fencing import fence
from kubeio.guarded import patch_if_spec_unchanged
from kubeio.pods import PodBasics, read_pod_basics
from kubeio.resources import BANDWIDTHS, PODS
from kubeio.rest import JSON, KubeApi

log = structlog.get_logger("accounting.release")

# A release is decided again after each conflict; beyond this many the reconcile fails and is
# retried with back-off rather than spinning against a busy scheduler.
MAX_WRITE_ATTEMPTS = 8


class ReleaseContention(RuntimeError):
    """Every attempt to release stale reservations met a conflicting write."""


class CacheView(Protocol):
    """What the books read from the watch caches."""

    def pods_on(self, node: str) -> list[PodBasics]:
        """The pods bound to ``node``."""

    def pod_named(self, namespace: str, name: str) -> PodBasics | None: ...

    def replicaset_owner(self, namespace: str, name: str) -> Workload | None: ...

    def dra_holding(self, node: str) -> DraHolding | None:
        """What DRA claims hold on ``node``; None when DRA sharing is off."""


@dataclass(frozen=True, slots=True)
class Settled:
    """A node's ledger with nothing stale left: the object, its typed view, its books."""

    raw: JSON
    bandwidth: NodeBandwidth
    books: Books


class Releaser:
    def __init__(
        self,
        api: KubeApi,
        settings: AccountingSettings,
        events: EventRecorder,
        metrics: AccountingMetrics,
        pods: CacheView,
    ) -> None:
        self._api = api
        self._settings = settings
        self._events = events
        self._metrics = metrics
        self._pods = pods
        self._lock = threading.Lock()
        self._first_seen: dict[str, datetime] = {}  # reservations not dated (books.dated)

    def forget(self, uids: Iterable[str]) -> None:
        """Reservations no ledger holds any more."""
        with self._lock:
            for uid in uids:
                self._first_seen.pop(uid, None)

    def settle(self, name: str, raw: JSON) -> Settled | None:
        """Release what is stale in ``raw`` (the node's Bandwidth); None when the object is gone
        or its capacity cannot be read."""
        fresh_pods: dict[str, PodBasics | None] = {}
        for _ in range(MAX_WRITE_ATTEMPTS):
            try:
                bandwidth = parse_bandwidth(raw)
            except MalformedBandwidth as error:
                log.error("bandwidth_malformed", node=name, error=str(error))
                return None
            books = self.books(bandwidth, fresh_pods)
            unconfirmed = [
                r
                for r in books.releases
                if r.needs_fresh_pod and r.reservation.pod_uid not in fresh_pods
            ]
            if unconfirmed:
                for release in unconfirmed:
                    fresh_pods[release.reservation.pod_uid] = self._confirm(bandwidth, release)
                continue
            if not books.releases:
                return Settled(raw, bandwidth, books)
            patched = self._release(bandwidth, books.releases)
            if patched is None:
                return None  # the Bandwidth is gone
            raw = patched
            # A pod read before this write may have been bound while it raced: read it again.
            fresh_pods.clear()
        raise ReleaseContention(
            f"Bandwidth {name}: {MAX_WRITE_ATTEMPTS} attempts to release stale reservations "
            "met conflicting writes"
        )

    def books(self, bandwidth: NodeBandwidth, fresh_pods: Mapping[str, PodBasics | None]) -> Books:
        now = datetime.now(UTC)
        with self._lock:
            for uid, reservation in bandwidth.reservations.items():
                if not dated(reservation, now) and uid not in self._first_seen:
                    self._first_seen[uid] = now
            first_seen = dict(self._first_seen)
        reserved_pods: dict[str, PodBasics | None] = {}
        for uid, reservation in bandwidth.reservations.items():
            if uid in fresh_pods:
                reserved_pods[uid] = fresh_pods[uid]
            else:
                reserved_pods[uid] = self._pods.pod_named(
                    reservation.pod_namespace, reservation.pod_name
                )
        return keep_books(
            bandwidth,
            self._pods.pods_on(bandwidth.name),
            reserved_pods,
            unbound_grace=timedelta(seconds=self._settings.unbound_grace_seconds),
            now=now,
            replicaset_owner=self._pods.replicaset_owner,
            first_seen=first_seen,
            dra=self._pods.dra_holding(bandwidth.name),
        )

    def _confirm(self, bandwidth: NodeBandwidth, release: Release) -> PodBasics | None:
        """The reserved pod as the apiserver has it now, fenced if the release is NeverBound."""
        reservation = release.reservation
        policy = self._settings.request_policy
        if release.reason is not ReleaseReason.NEVER_BOUND:
            path = PODS.path(namespace=reservation.pod_namespace, name=reservation.pod_name)
            try:
                return read_pod_basics(self._api.get(path), policy)
            except NotFound:
                return None
        token = reservation.fence_token(bandwidth.name)
        pod = fence(
            self._api,
            reservation.pod_namespace,
            reservation.pod_name,
            reservation.pod_uid,
            token,
        )
        log.debug("pod_fenced", node=bandwidth.name, pod=release.pod, token=token)
        return read_pod_basics(pod, policy) if pod is not None else None

    def _release(self, bandwidth: NodeBandwidth, releases: Iterable[Release]) -> JSON | None:
        """Patch the ledger without ``releases``; the object after the write, or after a
        conflict the object as it is now (to decide again); None if it was deleted."""
        releases = list(releases)
        gone = {release.reservation.pod_uid for release in releases}
        kept = [r for uid, r in bandwidth.reservations.items() if uid not in gone]
        path = BANDWIDTHS.path(name=bandwidth.name)
        try:
            patched = patch_if_spec_unchanged(
                self._api, path, bandwidth.uid, bandwidth.generation, reservations_patch(kept)
            )
        except Conflict:
            log.debug("release_conflict", node=bandwidth.name, attempting=len(releases))
            try:
                return self._api.get(path)
            except NotFound:
                return None
        except NotFound:
            return None
        for release in releases:
            self._metrics.released.labels(release.reason.value).inc()
            log.info(
                "reservation_released",
                node=bandwidth.name,
                pod=release.pod,
                pod_uid=release.reservation.pod_uid,
                reason=release.reason.value,
            )
            self._events.record(
                ObjectRef.of(patched, KIND, API_VERSION),
                NORMAL,
                "ReservationReleased",
                f"Released the reservation of pod {release.pod} "
                f"({release.reservation.request.describe()}): {release.detail}",
            )
        return patched
