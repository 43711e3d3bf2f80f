"""The per-node numbers a decision reads, one array row per node, kept current on every change.

Filtering and scoring thousands of nodes one Python call per node and plugin is what a decision
used to spend its time on. ``NodeTable`` holds the same numbers ``NodeInfo`` holds — free and
total bandwidth per axis, a full ledger, requested and allocatable resources, siblings per
workload — as numpy arrays (row ``NodeInfo.row``, in the order nodes were first seen, which is
the order of ``ClusterState.nodes``), so a plugin's ``filter_rows``/``score_rows`` run over
every node at once. ``NodeInfo`` writes its row whenever it changes (``NodeInfo.table``); a
what-if copy (``NodeInfo.snapshot``) has no table and changes nothing here.

What depends only on the node's facts (labels, taints, readiness) and on the pod's template
(tolerations, selectors, node affinity) is computed by the plugin's own per-node method once per
template and kept, per row, until that node's facts change (``static``): siblings share a
template, so a burst of replicas pays for it once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from scheduler.nodeinfo import NodeInfo
    from scheduler.podfacts import WorkloadKey

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Rows = npt.NDArray[np.intp]

SAFE = 1 << 62
"""Larger integers are not held in the int64 columns (sums could overflow): a plugin falls back
to its per-node method while any is present."""
STATIC_TEMPLATES = 64
"""Templates whose static per-node results are kept (least recently used dropped first)."""


@dataclass(slots=True)
class Static:
    """One plugin's per-node results for one pod template, with the facts revision of each
    row they were computed at (-1: never)."""

    revision: Ints
    values: list[Any]
    _arrays: dict[str, npt.NDArray[Any]]

    def array(self, kind: str, convert: Callable[[Any], Any], dtype: type) -> npt.NDArray[Any]:
        """``convert`` of every value as an array, kept until a row is recomputed."""
        array = self._arrays.get(kind)
        if array is None:
            array = np.fromiter((convert(v) for v in self.values), dtype, len(self.values))
            self._arrays[kind] = array
        return array


class NodeTable:
    def __init__(self) -> None:
        self.nodes: list[NodeInfo] = []
        self._rows: dict[str, int] = {}
        self.size = 0
        self._capacity = 0
        self.present: Mask = np.zeros(0, np.bool_)
        self.facts_revision: Ints = np.zeros(0, np.int64)
        self.has_ledger: Mask = np.zeros(0, np.bool_)
        self.ledger_full: Mask = np.zeros(0, np.bool_)
        self.free: Ints = np.zeros((4, 0), np.int64)
        """Free Mbps per axis (``AXES`` order) by row: ``free[axis, row]``."""
        self.capacity: Ints = np.zeros((4, 0), np.int64)
        self.capacity_divisor: Ints = np.ones((4, 0), np.int64)
        """``capacity`` with 1 for 0, to divide by."""
        self.capacity_axes: Ints = np.ones(0, np.int64)
        """Axes with a capacity, at least 1, to divide by."""
        self._allocatable: dict[str, Ints] = {}
        self._requested: dict[str, Ints] = {}
        self.unsafe = False
        """Some resource amount is too large for int64 arithmetic."""
        self._holders: dict[str, set[int]] = {}
        self._siblings: dict[WorkloadKey, dict[int, int]] = {}
        self._revision = 0
        self._static: OrderedDict[tuple[str, str], Static] = OrderedDict()
        self._name_rank: Ints | None = None
        self._present_rows: Rows | None = None

    # Rows ---------------------------------------------------------------------------------

    def add(self, node: NodeInfo) -> int:
        if self.size == self._capacity:
            self._grow(max(64, 2 * self._capacity))
        row = self.size
        self.size += 1
        self.nodes.append(node)
        self._rows[node.name] = row
        self._name_rank = None
        self._present_rows = None
        self.facts_revision[row] = self._next_revision()
        return row

    def _grow(self, capacity: int) -> None:
        def grown(array: npt.NDArray[Any], fill: int = 0) -> npt.NDArray[Any]:
            bigger = np.full((*array.shape[:-1], capacity), fill, array.dtype)
            bigger[..., : array.shape[-1]] = array
            return bigger

        self.present = grown(self.present)
        self.facts_revision = grown(self.facts_revision)
        self.has_ledger = grown(self.has_ledger)
        self.ledger_full = grown(self.ledger_full)
        self.free = grown(self.free)
        self.capacity = grown(self.capacity)
        self.capacity_divisor = grown(self.capacity_divisor, 1)
        self.capacity_axes = grown(self.capacity_axes, 1)
        self._allocatable = {name: grown(column) for name, column in self._allocatable.items()}
        self._requested = {name: grown(column) for name, column in self._requested.items()}
        self._capacity = capacity

    def _next_revision(self) -> int:
        self._revision += 1
        return self._revision

    def columns(self, rows: Rows) -> slice | Rows:
        """What to index the arrays with to compute something for ``rows``: every row (a
        contiguous slice, faster than gathering) when ``rows`` are most of them, ``rows``
        otherwise; ``picked`` then takes ``rows`` out of the result."""
        return slice(0, self.size) if 2 * len(rows) > self.size else rows

    def picked(self, values: npt.NDArray[Any], rows: Rows, columns: slice | Rows) -> Any:
        return values[rows] if isinstance(columns, slice) else values

    def node_named(self, name: str) -> NodeInfo | None:
        row = self._rows.get(name)
        return self.nodes[row] if row is not None else None

    def rows(self, nodes: Iterable[NodeInfo]) -> list[int]:
        return [node.row for node in nodes if node.table is self]

    def present_rows(self) -> Rows:
        """Rows of the nodes the node watch shows (with facts), in row order."""
        if self._present_rows is None:
            self._present_rows = np.flatnonzero(self.present[: self.size])
        return self._present_rows

    def name_rank(self) -> Ints:
        """Each row's position in the nodes sorted by name (ties are broken by name)."""
        if self._name_rank is None:
            order = sorted(range(self.size), key=lambda row: self.nodes[row].name)
            rank = np.empty(self.size, np.int64)
            rank[order] = np.arange(self.size)
            self._name_rank = rank
        return self._name_rank

    # Writes from NodeInfo -----------------------------------------------------------------

    def facts_changed(self, node: NodeInfo) -> None:
        row = node.row
        facts = node.facts
        if self.present[row] != (facts is not None):
            self.present[row] = facts is not None
            self._present_rows = None
        self.facts_revision[row] = self._next_revision()
        allocatable = facts.allocatable if facts is not None else {}
        for name, column in self._allocatable.items():
            column[row] = self._checked(allocatable.get(name, 0))

    def requested_changed(self, node: NodeInfo, names: Iterable[str]) -> None:
        for name in names:
            column = self._requested.get(name)
            if column is not None:
                column[node.row] = self._checked(node.requested.get(name, 0))

    def siblings_changed(self, node: NodeInfo, workload: WorkloadKey) -> None:
        count = node.siblings.get(workload, 0)
        rows = self._siblings.setdefault(workload, {})
        if count:
            rows[node.row] = count
        else:
            rows.pop(node.row, None)
            if not rows:
                del self._siblings[workload]

    def bandwidth_changed(self, node: NodeInfo) -> None:
        row = node.row
        free = node.free_bandwidth
        capacity = node.capacity_vector
        self.has_ledger[row] = free is not None
        self.free[:, row] = free if free is not None else (0, 0, 0, 0)
        capacity = capacity if capacity is not None else (0, 0, 0, 0)
        self.capacity[:, row] = capacity
        self.capacity_divisor[:, row] = [c if c > 0 else 1 for c in capacity]
        self.capacity_axes[row] = max(1, sum(1 for c in capacity if c > 0))
        self.ledger_full[row] = node.ledger_full()

    def reservations_changed(
        self, node: NodeInfo, before: Iterable[str], after: Iterable[str]
    ) -> None:
        row = node.row
        for uid in before:
            holders = self._holders.get(uid)
            if holders is not None:
                holders.discard(row)
                if not holders:
                    del self._holders[uid]
        for uid in after:
            self._holders.setdefault(uid, set()).add(row)

    def _checked(self, value: int) -> int:
        if not -SAFE < value < SAFE:
            self.unsafe = True
            return 0
        return value

    # Reads for plugins --------------------------------------------------------------------

    def holders(self, uid: str) -> list[int]:
        """Rows whose ledger holds a reservation for the pod, lowest first."""
        return sorted(self._holders.get(uid, ()))

    def siblings(self, workload: WorkloadKey) -> Floats:
        counts = np.zeros(self.size, np.float64)
        for row, count in self._siblings.get(workload, {}).items():
            counts[row] = count
        return counts

    def allocatable(self, name: str) -> Ints:
        column = self._allocatable.get(name)
        if column is None:
            column = np.zeros(self._capacity, np.int64)
            for row, node in enumerate(self.nodes):
                facts = node.facts
                column[row] = self._checked(facts.allocatable.get(name, 0) if facts else 0)
            self._allocatable[name] = column
        return column[: self.size]

    def requested(self, name: str) -> Ints:
        column = self._requested.get(name)
        if column is None:
            column = np.zeros(self._capacity, np.int64)
            for row, node in enumerate(self.nodes):
                column[row] = self._checked(node.requested.get(name, 0))
            self._requested[name] = column
        return column[: self.size]

    def static(self, plugin: str, template: str, compute: Callable[[NodeInfo], Any]) -> Static:
        """``compute(node)`` for every row, as of each node's current facts: kept per plugin
        and pod template, recomputed only for the rows whose facts changed since."""
        key = (plugin, template)
        entry = self._static.get(key)
        if entry is None:
            entry = Static(np.full(0, -1, np.int64), [], {})
            self._static[key] = entry
            if len(self._static) > STATIC_TEMPLATES:
                self._static.popitem(last=False)
        else:
            self._static.move_to_end(key)
        if len(entry.values) < self.size:
            grown = np.full(self.size, -1, np.int64)
            grown[: len(entry.revision)] = entry.revision
            entry.revision = grown
            entry.values.extend([None] * (self.size - len(entry.values)))
            entry._arrays.clear()
        current = self.facts_revision[: self.size]
        stale = np.flatnonzero(entry.revision != current).tolist()
        for row in stale:
            entry.values[row] = compute(self.nodes[row])
        if stale:
            entry.revision[stale] = current[stale]
            entry._arrays.clear()
        return entry
