"""Placement quality of a run, from the final placements: pure arithmetic, no API.

For each workload (a StatefulSet's or Deployment's pods), the nodes its bound pods span
against the fewest nodes that could hold them, and over all workloads the share of sibling
pairs (two pods of one workload) that sit on one node.

"The fewest nodes that could hold them" is counted on the cluster's nodes as if they were
empty (other workloads ignored), on every axis a pod asks for — the four bandwidth axes and
the node's pod count. It is exact when every pod of the workload asks the same (every
workload of ``bench.workload`` does): each node holds a whole number of such pods, and the
nodes holding the most are taken first. For pods asking different amounts it is a lower
bound: on each axis, the fewest of the largest nodes whose capacities add up to the pods'
total, the largest count over the axes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Vector = tuple[int, ...]
"""Amounts on the same axes, in the same order, for a pod's demand and a node's capacity."""


def _fewest_summing_to(amount: int, capacities: Iterable[int]) -> int:
    """Fewest of ``capacities`` (largest first) adding up to ``amount``; all of the non-zero
    ones if even they fall short."""
    if amount <= 0:
        return 0
    total = 0
    used = 0
    for capacity in sorted(capacities, reverse=True):
        if capacity <= 0:
            break
        total += capacity
        used += 1
        if total >= amount:
            break
    return used


def fewest_nodes(demands: Sequence[Vector], capacities: Sequence[Vector]) -> int:
    """The fewest of the (empty) nodes with ``capacities`` that could hold pods with
    ``demands``: exact if the demands are all equal, else a lower bound (see the module)."""
    if not demands:
        return 0
    if all(d == demands[0] for d in demands):
        each = demands[0]
        per_node = [
            min((c // d for c, d in zip(cap, each, strict=True) if d > 0), default=len(demands))
            for cap in capacities
        ]
        return _fewest_summing_to(len(demands), per_node)
    axes = len(demands[0])
    return max(
        1,
        *(
            _fewest_summing_to(sum(d[a] for d in demands), (c[a] for c in capacities))
            for a in range(axes)
        ),
    )


@dataclass(frozen=True, slots=True)
class WorkloadPlacement:
    workload: str
    pods: int
    """Pods of the workload that were bound."""
    span: int
    """Nodes those pods sit on."""
    fewest: int
    """The fewest nodes that could hold them (see the module)."""

    @property
    def excess(self) -> int:
        return self.span - self.fewest

    @property
    def ratio(self) -> float:
        return self.span / max(1, self.fewest)


def workload_placements(
    pods: Iterable[tuple[str, str, Vector]], capacities: Mapping[str, Vector]
) -> list[WorkloadPlacement]:
    """``pods``: (workload, node, demand) of each bound pod of a workload; ``capacities``:
    every node of the cluster. One entry per workload, by name."""
    nodes: dict[str, list[str]] = {}
    demands: dict[str, list[Vector]] = {}
    for workload, node, demand in pods:
        nodes.setdefault(workload, []).append(node)
        demands.setdefault(workload, []).append(demand)
    every = list(capacities.values())
    return [
        WorkloadPlacement(
            workload=name,
            pods=len(nodes[name]),
            span=len(set(nodes[name])),
            fewest=fewest_nodes(demands[name], every),
        )
        for name in sorted(nodes)
    ]


def sibling_pairs_together(nodes_by_workload: Mapping[str, Sequence[str]]) -> float | None:
    """Of every pair of pods of one workload, the share on the same node; None if no pairs."""
    pairs = 0
    together = 0
    for nodes in nodes_by_workload.values():
        pairs += len(nodes) * (len(nodes) - 1) // 2
        together += sum(k * (k - 1) // 2 for k in Counter(nodes).values())
    return together / pairs if pairs else None


@dataclass(frozen=True, slots=True)
class Quality:
    """A run's placement quality over its workloads (see the module)."""

    workloads: int
    span_mean: float
    fewest_mean: float
    span_over_fewest_mean: float
    excess_nodes: int
    """Nodes spanned beyond the fewest, summed over the workloads."""
    sibling_pairs_together: float | None


def quality(
    pods: Sequence[tuple[str, str, Vector]], capacities: Mapping[str, Vector]
) -> tuple[Quality, list[WorkloadPlacement]]:
    placements = workload_placements(pods, capacities)
    nodes: dict[str, list[str]] = {}
    for workload, node, _ in pods:
        nodes.setdefault(workload, []).append(node)
    count = max(1, len(placements))
    return (
        Quality(
            workloads=len(placements),
            span_mean=round(sum(p.span for p in placements) / count, 2),
            fewest_mean=round(sum(p.fewest for p in placements) / count, 2),
            span_over_fewest_mean=round(sum(p.ratio for p in placements) / count, 2),
            excess_nodes=sum(p.excess for p in placements),
            sibling_pairs_together=sibling_pairs_together(nodes),
        ),
        placements,
    )
