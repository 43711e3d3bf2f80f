"""What the accounting controller tells people: the Bandwidth's status, and Events.

- ``status`` is written only when it differs from the stored one but for timestamps
  (``accounting.status.same_status``), and not twice from the same resourceVersion: the cache
  delivers our own write late, and the version before it must not be mistaken for a status
  that still needs writing. While a node's state and conditions stay the same, its status is
  written at most once per ``status_interval`` (the first change at once, the rest of the
  interval's changes in one write at its end): a status write costs the apiserver as much as
  a reservation, and siblings placed together would otherwise each make one. A change of
  state (Oversubscribed, NodeNotFound) is written at once. A status too large to store
  (etcd's request limit: thousands of charges with long names) is written without its
  per-pod list, with one Warning event.
- ``Oversubscribed`` / ``OversubscriptionResolved`` events when the condition flips.
- ``InvalidBandwidthAnnotation`` once per pod and error: the pod is charged nothing.
- One log line per ledger problem the scheduler's writers should know of.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import structlog

from accounting.books import Books
from accounting.metrics import AccountingMetrics
from accounting.status import (
    desired_status,
    oversubscription_message,
    oversubscription_news,
    same_standing,
    same_status,
)
from bandwidth.model import API_VERSION, KIND, NodeBandwidth
from kubeio.errors import NotFound, TooLarge
from kubeio.events import NORMAL, WARNING, EventRecorder, ObjectRef
from kubeio.resources import BANDWIDTHS
from kubeio.rest import JSON, KubeApi

log = structlog.get_logger("accounting.reporting")


class Reporter:
    def __init__(
        self,
        api: KubeApi,
        events: EventRecorder,
        metrics: AccountingMetrics,
        *,
        status_interval_seconds: float = 0.0,
    ) -> None:
        self._api = api
        self._status_interval = status_interval_seconds
        self._events = events
        self._metrics = metrics
        self._lock = threading.Lock()
        self._warned_pods: dict[str, str] = {}  # pod UID -> the error it was warned about
        # Bandwidth name -> (resourceVersion the status was computed from, status written,
        # when it was written, monotonic).
        self._last_writes: dict[str, tuple[str, JSON, float]] = {}
        # Bandwidth name -> charges in the smallest status found too large to store.
        self._too_large: dict[str, int] = {}

    def pod_gone(self, uid: str) -> None:
        with self._lock:
            self._warned_pods.pop(uid, None)

    def bandwidth_gone(self, name: str) -> None:
        with self._lock:
            self._last_writes.pop(name, None)
            self._too_large.pop(name, None)

    def report(
        self, raw: JSON, bandwidth: NodeBandwidth, books: Books, *, node_exists: bool
    ) -> float | None:
        """Everything the settled books of one node call for; seconds until a status held
        back by the pacing is due, if one is."""
        if bandwidth.problems:
            log.warning(
                "bandwidth_entries_ignored", node=bandwidth.name, problems=list(bandwidth.problems)
            )
        due = self._write_status(raw, bandwidth, books, node_exists=node_exists)
        self._report_unhonoured(books)
        self._metrics.record_books(bandwidth.name, books)
        return due

    def _write_status(
        self, raw: JSON, bandwidth: NodeBandwidth, books: Books, *, node_exists: bool
    ) -> float | None:
        name = bandwidth.name
        previous = raw.get("status") or {}
        desired = desired_status(
            books,
            node_exists=node_exists,
            generation=bandwidth.generation,
            previous=previous,
            now=datetime.now(UTC),
        )
        with self._lock:
            too_large = self._too_large.get(name)
        if too_large is not None and len(books.charges) >= too_large:
            desired.pop("reservations", None)
        if same_status(previous, desired):
            return None
        based_on = bandwidth.resource_version
        now = time.monotonic()
        with self._lock:
            last = self._last_writes.get(name)
        if last is not None and last[0] == based_on and same_status(last[1], desired):
            return None  # written already from this very version: the cache has not caught up
        if last is not None and same_standing(previous, desired):
            due = last[2] + self._status_interval - now
            if due > 0:
                return due
        path = BANDWIDTHS.path(name=name, subresource="status")
        written: JSON | None
        try:
            written = self._api.patch(path, {"status": desired})
        except NotFound:
            return None
        except TooLarge as error:
            written = self._write_without_reservations(name, path, desired, books, error)
        if written is None:
            return None
        with self._lock:
            self._last_writes[name] = (based_on, desired, now)
        self._metrics.status_writes.inc()
        log.debug("status_written", node=name, state=desired["state"])
        self._report_oversubscription(name, previous, desired, written, books)
        return None

    def _write_without_reservations(
        self, name: str, path: str, desired: JSON, books: Books, error: TooLarge
    ) -> JSON | None:
        with self._lock:
            self._too_large[name] = len(books.charges)
        log.error("status_too_large", node=name, charges=len(books.charges), error=str(error))
        desired.pop("reservations", None)
        # A merge patch keeps what it does not name: the stale list must be removed outright.
        try:
            written = self._api.patch(path, {"status": {**desired, "reservations": None}})
        except NotFound:
            return None
        self._events.record(
            ObjectRef.of(written, KIND, API_VERSION),
            WARNING,
            "StatusTooLarge",
            f"status.reservations ({len(books.charges)} pods charged) does not fit in the "
            f"object ({error.message}); the status is written without it",
        )
        return written

    def _report_oversubscription(
        self, name: str, previous: JSON, desired: JSON, written: JSON, books: Books
    ) -> None:
        news = oversubscription_news(previous, desired)
        ref = ObjectRef.of(written, KIND, API_VERSION)
        if news in ("started", "changed"):
            message = oversubscription_message(books)
            log.warning("node_oversubscribed", node=name, detail=message)
            self._events.record(
                ref,
                WARNING,
                "Oversubscribed",
                f"Node {name} is charged more bandwidth than it has: {message}",
            )
        elif news == "resolved":
            log.info("node_oversubscription_resolved", node=name)
            self._events.record(
                ref, NORMAL, "OversubscriptionResolved", f"Node {name} is within capacity again"
            )

    def _report_unhonoured(self, books: Books) -> None:
        for unhonoured in books.unhonoured:
            pod = unhonoured.pod
            message = str(unhonoured.error)
            with self._lock:
                if self._warned_pods.get(pod.uid) == message:
                    continue
                self._warned_pods[pod.uid] = message
            log.warning("bandwidth_annotation_invalid", node=books.node, pod=pod.key, error=message)
            self._events.record(
                ObjectRef(
                    kind="Pod",
                    api_version="v1",
                    name=pod.name,
                    uid=pod.uid,
                    namespace=pod.namespace,
                ),
                WARNING,
                "InvalidBandwidthAnnotation",
                f"{message}; the pod is charged no bandwidth on node {books.node}",
            )
