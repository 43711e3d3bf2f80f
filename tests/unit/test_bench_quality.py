"""Placement-quality arithmetic of the benchmark (bench.quality)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from bench.quality import (
    fewest_nodes,
    quality,
    sibling_pairs_together,
    workload_placements,
)


def test_equal_pods_take_the_nodes_that_hold_most_first() -> None:
    # (uplink, pods): node a holds 2 pods of 400, b holds 5, c holds 1 (its pod limit).
    capacities = [(1000, 110), (2000, 110), (10000, 1)]
    assert fewest_nodes([(400, 1)] * 5, capacities) == 1
    assert fewest_nodes([(400, 1)] * 6, capacities) == 2
    assert fewest_nodes([(400, 1)] * 8, capacities) == 3


def test_an_axis_not_asked_for_does_not_limit() -> None:
    assert fewest_nodes([(0, 1)] * 50, [(10, 110)]) == 1


def test_more_pods_than_the_cluster_holds_counts_every_node_that_holds_one() -> None:
    assert fewest_nodes([(600, 1)] * 9, [(1000, 110), (1000, 110), (500, 110)]) == 2


def test_mixed_pods_give_the_per_axis_lower_bound() -> None:
    # Uplink total 1500 needs the two largest (1000 + 600); downlink 300 needs one.
    demands = [(900, 100, 1), (600, 200, 1)]
    capacities = [(1000, 1000, 110), (600, 1000, 110), (500, 1000, 110)]
    assert fewest_nodes(demands, capacities) == 2
    assert fewest_nodes([], capacities) == 0


def _exact(demands: list[tuple[int, ...]], capacities: list[tuple[int, ...]]) -> int:
    """Brute force: the smallest set of nodes the pods can be assigned to within capacity."""
    for k in range(1, len(capacities) + 1):
        for nodes in itertools.combinations(range(len(capacities)), k):
            for assignment in itertools.product(nodes, repeat=len(demands)):
                used = {n: [0] * len(demands[0]) for n in nodes}
                for pod, node in zip(demands, assignment, strict=True):
                    used[node] = [u + d for u, d in zip(used[node], pod, strict=True)]
                if all(
                    all(u <= c for u, c in zip(used[n], capacities[n], strict=True)) for n in nodes
                ):
                    return k
    return len(capacities) + 1


@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(1, 10), st.integers(1, 10)), min_size=1, max_size=3),
)
def test_never_more_than_an_exact_packing(
    demands: list[tuple[int, ...]], capacities: list[tuple[int, ...]]
) -> None:
    exact = _exact(demands, capacities)
    if exact <= len(capacities):
        bound = fewest_nodes(demands, capacities)
        assert bound <= exact
        if all(d == demands[0] for d in demands):
            assert bound == exact


def test_workload_placements_span_fewest_and_excess() -> None:
    capacities = {"a": (1000, 110), "b": (1000, 110), "c": (1000, 110)}
    pods = [
        ("web", "a", (100, 1)),
        ("web", "b", (100, 1)),
        ("web", "c", (100, 1)),
        ("db", "a", (600, 1)),
        ("db", "b", (600, 1)),
    ]
    web, db = sorted(workload_placements(pods, capacities), key=lambda p: p.workload != "web")
    assert (web.pods, web.span, web.fewest, web.excess, web.ratio) == (3, 3, 1, 2, 3.0)
    assert (db.pods, db.span, db.fewest, db.excess, db.ratio) == (2, 2, 2, 0, 1.0)


def test_sibling_pairs_together() -> None:
    # web: 4 pods, 2+2 on two nodes: 2 of 6 pairs together; db: 2 pods on one node: 1 of 1.
    share = sibling_pairs_together({"web": ["a", "a", "b", "b"], "db": ["c", "c"], "x": ["d"]})
    assert share == 3 / 7
    assert sibling_pairs_together({"x": ["d"]}) is None


def test_quality_summary() -> None:
    capacities = {"a": (1000, 110), "b": (1000, 110)}
    pods = [("web", "a", (100, 1)), ("web", "b", (100, 1)), ("db", "a", (100, 1))]
    summary, placements = quality(pods, capacities)
    assert len(placements) == 2
    assert summary.workloads == 2
    assert summary.span_mean == 1.5
    assert summary.fewest_mean == 1.0
    assert summary.span_over_fewest_mean == 1.5
    assert summary.excess_nodes == 1
    assert summary.sibling_pairs_together == 0.0
