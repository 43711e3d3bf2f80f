"""Required inter-pod affinity and anti-affinity filter; preferred terms score.

Semantics are kube-scheduler's InterPodAffinity (v1.37, the hostname fast path off, as it is by
default). Counts are by topology pair — (topology key, the value of that label on the node of a
matching pod) — computed once per pod in ``prefilter``:

- affinity: pods matching *all* the pod's required affinity terms, counted under each term's
  pair. A node passes when it has every term's topology label and each of its pairs holds a
  match — or when no pod in the cluster matches at all and the pod matches its own terms (the
  first pod of a group that wants to be together);
- anti-affinity: pods matching *any* required anti-affinity term, under that term's pair; a
  node whose pair holds one is refused;
- existing pods' anti-affinity: placed pods whose required anti-affinity selects this pod,
  under their pair; a node with any such pair among its labels is refused.

A term's namespaces are its list, or the pod's own namespace when it has neither a list nor a
``namespaceSelector``; a ``namespaceSelector`` adds the known namespaces whose labels match
(``{}``: every namespace). Placed pods are bound and assumed ones alike, so two replicas decided
back to back keep apart. The score adds, per pair, the weights of the pod's preferred terms
matched by placed pods (minus for anti-affinity), and those of placed pods' terms that match
this pod (their required affinity with weight 1).

In a what-if (preemption, nominated pods) ``add_pod``/``remove_pod`` move the three filter
counts as kube's PreFilterExtensions do; a pair whose count falls to zero is dropped, so the
first-pod rule holds when every match is taken away. For preemption, a refusal by the pod's own
affinity is unresolvable (taking pods away never adds a match), its anti-affinity and existing
pods' anti-affinity are resolvable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, ClusterView, PodContext, Reasons
from scheduler.podfacts import PodFacts
from scheduler.podindex import PREFERRED_ANTI_AFFINITY, REQUIRED_AFFINITY, PodIndex
from scheduler.podterms import AffinityTerm

NAME = "InterPodAffinity"
AFFINITY_MISMATCH = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_MISMATCH = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_AFFINITY_WEIGHT = 1
"""What a placed pod's required affinity that selects this pod adds to the score (kube's
``hardPodAffinityWeight`` default)."""

PairCounts = dict[str, dict[str, int]]
"""Topology key -> label value -> count: the counts per topology pair."""


@dataclass(slots=True)
class AffinityState:
    affinity: tuple[AffinityTerm, ...] = ()
    anti_affinity: tuple[AffinityTerm, ...] = ()
    affinity_counts: PairCounts = field(default_factory=dict)
    anti_affinity_counts: PairCounts = field(default_factory=dict)
    existing_anti_affinity: PairCounts = field(default_factory=dict)
    matches_own_affinity: bool = False
    topology_score: PairCounts = field(default_factory=dict)
    namespace_labels: Mapping[str, str] | None = None
    """The labels of the pod's namespace, for placed pods' ``namespaceSelector``."""


def _add(counts: PairCounts, node: NodeInfo | None, key: str, amount: int) -> None:
    value = node.facts.labels.get(key) if node is not None and node.facts is not None else None
    if value is not None:
        values = counts.setdefault(key, {})
        values[value] = values.get(value, 0) + amount


def _count_at(counts: PairCounts, key: str, value: str) -> int:
    values = counts.get(key)
    return values.get(value, 0) if values is not None else 0


def _pods_for(term: AffinityTerm, index: PodIndex) -> Iterator[tuple[PodFacts, NodeInfo]]:
    """Placed pods the (resolved) term selects, on nodes that exist."""
    namespaces: Iterable[str] = list(index.namespaces()) if term.all_namespaces else term.namespaces
    for namespace in namespaces:
        for pod, node in index.candidates(namespace, term.selector):
            if node.facts is not None and term.matches(pod.namespace, pod.labels, None):
                yield pod, node


def _affinity_counts(pod: PodFacts, terms: tuple[AffinityTerm, ...], index: PodIndex) -> PairCounts:
    counts: PairCounts = {}
    first, rest = terms[0], terms[1:]
    for other, node in _pods_for(first, index):
        if other.uid != pod.uid and all(
            t.matches(other.namespace, other.labels, None) for t in rest
        ):
            for term in terms:
                _add(counts, node, term.topology_key, 1)
    return counts


def _anti_affinity_counts(
    pod: PodFacts, terms: tuple[AffinityTerm, ...], index: PodIndex
) -> PairCounts:
    counts: PairCounts = {}
    for term in terms:
        for other, node in _pods_for(term, index):
            if other.uid != pod.uid:
                _add(counts, node, term.topology_key, 1)
    return counts


def _existing_anti_affinity(
    pod: PodFacts, cluster: ClusterView, namespace_labels: Mapping[str, str] | None
) -> PairCounts:
    counts: PairCounts = {}
    for term, holders in cluster.pod_index.anti_affinity.matching(pod):
        if term.matches(pod.namespace, pod.labels, namespace_labels):
            for node_name, pods in holders.items():
                _add(counts, cluster.nodes.get(node_name), term.topology_key, pods)
    return counts


def _topology_score(
    pod: PodFacts, cluster: ClusterView, namespace_labels: Mapping[str, str] | None
) -> PairCounts:
    index = cluster.pod_index
    score: PairCounts = {}
    for weighted, sign in (
        *((w, 1) for w in pod.terms.preferred_affinity),
        *((w, -1) for w in pod.terms.preferred_anti_affinity),
    ):
        term = weighted.term.resolved(cluster.namespaces)
        for other, node in _pods_for(term, index):
            if other.uid != pod.uid:
                _add(score, node, term.topology_key, sign * weighted.weight)
    for (kind, weight, term), holders in index.affinity.matching(pod):
        if not term.matches(pod.namespace, pod.labels, namespace_labels):
            continue
        if kind == REQUIRED_AFFINITY:
            weight = HARD_AFFINITY_WEIGHT
        elif kind == PREFERRED_ANTI_AFFINITY:
            weight = -weight
        for node_name, pods in holders.items():
            _add(score, cluster.nodes.get(node_name), term.topology_key, weight * pods)
    return score


class InterPodAffinity:
    name = NAME

    def prefilter(self, pod: PodFacts, cluster: ClusterView) -> AffinityState | None:
        terms = pod.terms
        index = cluster.pod_index
        if not terms.any and not index.anti_affinity and not index.affinity:
            return None
        own_labels = cluster.namespaces.get(pod.namespace)
        state = AffinityState(
            affinity=tuple(t.resolved(cluster.namespaces) for t in terms.required_affinity),
            anti_affinity=tuple(
                t.resolved(cluster.namespaces) for t in terms.required_anti_affinity
            ),
            existing_anti_affinity=_existing_anti_affinity(pod, cluster, own_labels),
            topology_score=_topology_score(pod, cluster, own_labels),
            namespace_labels=own_labels,
        )
        if state.affinity:
            state.affinity_counts = _affinity_counts(pod, state.affinity, index)
            state.matches_own_affinity = all(
                t.matches(pod.namespace, pod.labels, None) for t in state.affinity
            )
        if state.anti_affinity:
            state.anti_affinity_counts = _anti_affinity_counts(pod, state.anti_affinity, index)
        # Kept, as kube keeps it, for a pod with required anti-affinity and no match yet: a
        # what-if may put one on a node (a pod nominated there).
        if not (
            state.affinity
            or state.anti_affinity
            or state.existing_anti_affinity
            or any(any(values.values()) for values in state.topology_score.values())
        ):
            return None
        return state

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        state = ctx.cycle.get(NAME)
        if not isinstance(state, AffinityState):
            return FITS
        labels = node.facts.labels if node.facts is not None else {}
        if state.affinity and not _satisfies_affinity(state, labels):
            return (AFFINITY_MISMATCH,)
        if state.anti_affinity_counts:
            for term in state.anti_affinity:
                value = labels.get(term.topology_key)
                if value is not None and _count_at(
                    state.anti_affinity_counts, term.topology_key, value
                ):
                    return (ANTI_AFFINITY_MISMATCH,)
        for key, values in state.existing_anti_affinity.items():
            value = labels.get(key)
            if value is not None and values.get(value, 0) > 0:
                return (EXISTING_ANTI_AFFINITY,)
        return FITS

    def resolvable(self, ctx: PodContext, node: NodeInfo) -> bool:
        state = ctx.cycle.get(NAME)
        labels = node.facts.labels if node.facts is not None else {}
        return not (
            isinstance(state, AffinityState)
            and state.affinity
            and not _satisfies_affinity(state, labels)
        )

    def copy_state(self, state: object) -> object:
        assert isinstance(state, AffinityState)
        return replace(
            state,
            affinity_counts=_copied(state.affinity_counts),
            anti_affinity_counts=_copied(state.anti_affinity_counts),
            existing_anti_affinity=_copied(state.existing_anti_affinity),
        )

    def add_pod(self, state: object, pod: PodFacts, placed: PodFacts, node: NodeInfo) -> None:
        _update_with_pod(state, pod, placed, node, +1)

    def remove_pod(self, state: object, pod: PodFacts, placed: PodFacts, node: NodeInfo) -> None:
        _update_with_pod(state, pod, placed, node, -1)

    def score(self, ctx: PodContext, node: NodeInfo) -> float:
        state = ctx.cycle.get(NAME)
        if not isinstance(state, AffinityState) or not state.topology_score:
            return 0.0
        labels = node.facts.labels if node.facts is not None else {}
        total = 0
        for key, values in state.topology_score.items():
            value = labels.get(key)
            if value is not None:
                total += values.get(value, 0)
        return float(total)


def _copied(counts: PairCounts) -> PairCounts:
    return {key: dict(values) for key, values in counts.items()}


def _shift(counts: PairCounts, node: NodeInfo, key: str, delta: int) -> None:
    value = node.facts.labels.get(key) if node.facts is not None else None
    if value is None:
        return
    values = counts.setdefault(key, {})
    count = values.get(value, 0) + delta
    if count:
        values[value] = count
        return
    values.pop(value, None)
    if not values:
        del counts[key]


def _update_with_pod(
    state: object, pod: PodFacts, placed: PodFacts, node: NodeInfo, delta: int
) -> None:
    """The filter counts with ``placed`` on ``node`` (delta +1) or off it (-1)."""
    assert isinstance(state, AffinityState)
    if placed.uid == pod.uid:
        return
    for term in placed.terms.required_anti_affinity:
        if term.matches(pod.namespace, pod.labels, state.namespace_labels):
            _shift(state.existing_anti_affinity, node, term.topology_key, delta)
    if state.affinity and all(
        t.matches(placed.namespace, placed.labels, None) for t in state.affinity
    ):
        for term in state.affinity:
            _shift(state.affinity_counts, node, term.topology_key, delta)
    for term in state.anti_affinity:
        if term.matches(placed.namespace, placed.labels, None):
            _shift(state.anti_affinity_counts, node, term.topology_key, delta)


def _satisfies_affinity(state: AffinityState, labels: Mapping[str, str]) -> bool:
    found_everywhere = True
    for term in state.affinity:
        value = labels.get(term.topology_key)
        if value is None:
            return False  # every topology label must be on the node, first pod or not
        if _count_at(state.affinity_counts, term.topology_key, value) <= 0:
            found_everywhere = False
    if found_everywhere:
        return True
    # The first pod of a group with affinity to itself: nothing matches anywhere yet.
    return not state.affinity_counts and state.matches_own_affinity
