"""Prometheus metrics of the accounting controller, registered on the daemon's registry.

Per-node series (``node``, ``datapath`` local|network, ``direction`` uplink|downlink) are
removed when the node's Bandwidth goes away or the node leaves the controller's scope, so a
churning cluster does not grow the series count forever.
"""

from __future__ import annotations

import contextlib
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from accounting.books import Books
from bandwidth.budget import AXES, Usage

_AXIS_LABELS = ("node", "datapath", "direction")


class AccountingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.capacity = Gauge(
            "vaclab_accounting_capacity_mbps",
            "Bandwidth capacity of a node, from its Bandwidth spec.",
            _AXIS_LABELS,
            registry=registry,
        )
        self.used = Gauge(
            "vaclab_accounting_used_mbps",
            "Bandwidth charged on a node: reservations plus pods observed from other schedulers.",
            _AXIS_LABELS,
            registry=registry,
        )
        self.remaining = Gauge(
            "vaclab_accounting_remaining_mbps",
            "Bandwidth left on a node (never below zero).",
            _AXIS_LABELS,
            registry=registry,
        )
        self.oversubscribed_nodes = Gauge(
            "vaclab_accounting_oversubscribed_nodes",
            "Nodes whose charged bandwidth exceeds capacity on at least one axis.",
            registry=registry,
        )
        self.released = Counter(
            "vaclab_accounting_stale_reservations_released_total",
            "Reservations removed from a node's ledger, by reason.",
            ["reason"],
            registry=registry,
        )
        self.reconcile_duration = Histogram(
            "vaclab_accounting_reconcile_duration_seconds",
            "Time to reconcile one node's books, API calls included.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.reconcile_errors = Counter(
            "vaclab_accounting_reconcile_errors_total",
            "Reconciles that failed and were queued again with back-off.",
            registry=registry,
        )
        self.status_writes = Counter(
            "vaclab_accounting_status_writes_total",
            "Bandwidth status updates sent to the apiserver.",
            registry=registry,
        )
        self.bandwidths_created = Counter(
            "vaclab_accounting_bandwidths_created_total",
            "Bandwidth objects created for new nodes.",
            registry=registry,
        )
        self.bandwidths_deleted = Counter(
            "vaclab_accounting_bandwidths_deleted_total",
            "Bandwidth objects deleted because their node is gone.",
            registry=registry,
        )
        self._lock = threading.Lock()
        self._oversubscribed: set[str] = set()

    def record_books(self, node: str, books: Books) -> None:
        for gauge, usage in (
            (self.capacity, books.capacity),
            (self.used, books.used),
            (self.remaining, books.remaining),
        ):
            _set_axes(gauge, node, usage)
        with self._lock:
            if books.oversubscribed:
                self._oversubscribed.add(node)
            else:
                self._oversubscribed.discard(node)
            self.oversubscribed_nodes.set(len(self._oversubscribed))

    def forget_node(self, node: str) -> None:
        for gauge in (self.capacity, self.used, self.remaining):
            for axis in AXES:
                with contextlib.suppress(KeyError):  # never set: nothing to remove
                    gauge.remove(node, axis.datapath.value, axis.direction.value)
        with self._lock:
            self._oversubscribed.discard(node)
            self.oversubscribed_nodes.set(len(self._oversubscribed))


def _set_axes(gauge: Gauge, node: str, usage: Usage) -> None:
    for axis in AXES:
        gauge.labels(node, axis.datapath.value, axis.direction.value).set(usage.on(axis))
