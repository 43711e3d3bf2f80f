"""``DoNotSchedule`` topology spread constraints filter; ``ScheduleAnyway`` ones score.

Semantics are kube-scheduler's PodTopologySpread (v1.37). For each constraint, ``prefilter``
counts the matching pods of the pod's namespace per domain (value of the topology label):

- a node is part of the domains only if it has the topology labels of *every* constraint of
  the kind (hard or soft) and passes the constraint's inclusion policies: with
  ``nodeAffinityPolicy: Honor`` (default) the pod's nodeSelector and required node affinity,
  with ``nodeTaintsPolicy: Honor`` (default ``Ignore``) its tolerations of NoSchedule and
  NoExecute taints;
- a domain with no matching pod still counts (it is the minimum); pods being deleted do not;
  a missing or empty (``{}``) label selector counts no pod;
- skew on a node = pods in its domain + 1 if the pod matches its own selector - the global
  minimum, where the minimum is 0 while there are fewer domains than ``minDomains``. A node
  is refused when the skew exceeds ``maxSkew``, or when it lacks the topology label.

Placed pods are bound and assumed ones alike, so a burst of replicas spreads as it is decided.
The score is kube's: per soft constraint, the matching pods in the node's domain weighted by
log(domains + 2), plus ``maxSkew - 1``; fewer is better, and a node missing a soft constraint's
label scores worst. (kube counts the domains of the feasible nodes for that weight, this plugin
those of every eligible node: the weights of two soft constraints may differ slightly, never
the order of nodes under one.) Pods without constraints get none: kube-scheduler's system default
spreading (a score) is not applied, because packing siblings is this scheduler's purpose.

In a what-if (preemption, nominated pods) ``add_pod``/``remove_pod`` move the hard counts as
kube's PreFilterExtensions do: a pod of the same namespace matching a constraint's selector,
on a node that has every hard topology label and passes that constraint's inclusion policies.
For preemption a skew refusal is resolvable; a missing topology label is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, ClusterView, PodContext, Reasons
from scheduler.plugins.node_affinity import required_affinity_matches
from scheduler.plugins.taint_toleration import untolerated_hard_taint
from scheduler.podfacts import PodFacts
from scheduler.podterms import SpreadConstraint, selector_matches

NAME = "PodTopologySpread"
SPREAD_MISMATCH = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL = SPREAD_MISMATCH + " (missing required label)"


@dataclass(slots=True)
class Domains:
    """Matching pods per domain, for each constraint of one kind (hard or soft)."""

    constraints: tuple[SpreadConstraint, ...] = ()
    counts: list[dict[str, int]] = field(default_factory=list)

    def minimum(self, index: int) -> int:
        counts = self.counts[index]
        if len(counts) < self.constraints[index].min_domains:
            return 0
        return min(counts.values())


@dataclass(slots=True)
class SpreadState:
    hard: Domains
    self_match: tuple[bool, ...]
    soft: Domains
    soft_weights: tuple[float, ...] = ()
    soft_worst: float = 0.0


def _eligible(pod: PodFacts, constraint: SpreadConstraint, node: NodeInfo) -> bool:
    facts = node.facts
    assert facts is not None
    if (
        constraint.honor_node_affinity
        and (pod.node_selector or pod.required_node_terms)
        and not required_affinity_matches(pod, facts.labels, node.name)
    ):
        return False
    return not (
        constraint.honor_taints
        and facts.taints
        and untolerated_hard_taint(facts.taints, pod.tolerations) is not None
    )


def count_domains(
    pod: PodFacts, constraints: tuple[SpreadConstraint, ...], cluster: ClusterView
) -> Domains:
    """Every eligible domain of each constraint with its count of matching pods."""
    domains = Domains(constraints, [{} for _ in constraints])
    if not constraints:
        return domains
    keys = [c.topology_key for c in constraints]
    places: dict[str, list[str | None]] = {}  # node name -> its domain per constraint
    for node in cluster.nodes.values():
        if node.facts is None:
            continue
        labels = node.facts.labels
        if any(key not in labels for key in keys):
            continue
        place: list[str | None] = []
        for i, constraint in enumerate(constraints):
            if _eligible(pod, constraint, node):
                value = labels[keys[i]]
                domains.counts[i].setdefault(value, 0)
                place.append(value)
            else:
                place.append(None)
        places[node.name] = place
    index = cluster.pod_index
    for i, constraint in enumerate(constraints):
        if constraint.counts_nothing:
            continue
        counts = domains.counts[i]
        for other, node in index.candidates(pod.namespace, constraint.selector):
            where = places.get(node.name)
            domain = where[i] if where is not None else None
            if (
                domain is None
                or other.deleting
                or other.uid == pod.uid
                or not selector_matches(constraint.selector, other.labels)
            ):
                continue
            counts[domain] += 1
    return domains


def _update_with_pod(
    state: object, pod: PodFacts, placed: PodFacts, node: NodeInfo, delta: int
) -> None:
    """The hard counts with ``placed`` on ``node`` (delta +1) or off it (-1), counted as
    ``count_domains`` counts: a pod being deleted never counted."""
    assert isinstance(state, SpreadState)
    hard = state.hard
    if (
        placed.namespace != pod.namespace
        or placed.uid == pod.uid
        or placed.deleting
        or node.facts is None
    ):
        return
    labels = node.facts.labels
    if any(c.topology_key not in labels for c in hard.constraints):
        return
    for i, constraint in enumerate(hard.constraints):
        if (
            constraint.counts_nothing
            or not selector_matches(constraint.selector, placed.labels)
            or not _eligible(pod, constraint, node)
        ):
            continue
        counts = hard.counts[i]
        domain = labels[constraint.topology_key]
        counts[domain] = counts.get(domain, 0) + delta


class PodTopologySpread:
    name = NAME

    def prefilter(self, pod: PodFacts, cluster: ClusterView) -> SpreadState | None:
        if not pod.spread:
            return None
        hard = tuple(c for c in pod.spread if c.hard)
        soft = tuple(c for c in pod.spread if not c.hard)
        state = SpreadState(
            hard=count_domains(pod, hard, cluster),
            self_match=tuple(selector_matches(c.selector, pod.labels) for c in hard),
            soft=count_domains(pod, soft, cluster),
        )
        if soft:
            state.soft_weights = tuple(math.log(len(c) + 2) for c in state.soft.counts)
            highest = sum(
                max(counts.values(), default=0) * weight + constraint.max_skew - 1
                for constraint, counts, weight in zip(
                    soft, state.soft.counts, state.soft_weights, strict=True
                )
            )
            state.soft_worst = -(highest + 1)
        return state

    def resolvable(self, ctx: PodContext, node: NodeInfo) -> bool:
        state = ctx.cycle.get(NAME)
        labels = node.facts.labels if node.facts is not None else {}
        return not isinstance(state, SpreadState) or all(
            c.topology_key in labels for c in state.hard.constraints
        )

    def copy_state(self, state: object) -> object:
        assert isinstance(state, SpreadState)
        hard = Domains(state.hard.constraints, [dict(counts) for counts in state.hard.counts])
        return replace(state, hard=hard)

    def add_pod(self, state: object, pod: PodFacts, placed: PodFacts, node: NodeInfo) -> None:
        _update_with_pod(state, pod, placed, node, +1)

    def remove_pod(self, state: object, pod: PodFacts, placed: PodFacts, node: NodeInfo) -> None:
        _update_with_pod(state, pod, placed, node, -1)

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        state = ctx.cycle.get(NAME)
        if not isinstance(state, SpreadState) or not state.hard.constraints:
            return FITS
        labels = node.facts.labels if node.facts is not None else {}
        hard = state.hard
        for i, constraint in enumerate(hard.constraints):
            value = labels.get(constraint.topology_key)
            if value is None:
                return (MISSING_LABEL,)
            skew = hard.counts[i].get(value, 0) + state.self_match[i] - hard.minimum(i)
            if skew > constraint.max_skew:
                return (SPREAD_MISMATCH,)
        return FITS

    def score(self, ctx: PodContext, node: NodeInfo) -> float:
        """Minus kube's raw score, so that fewer matching pods in the domain rank higher."""
        state = ctx.cycle.get(NAME)
        if not isinstance(state, SpreadState) or not state.soft.constraints:
            return 0.0
        labels = node.facts.labels if node.facts is not None else {}
        total = 0.0
        for i, constraint in enumerate(state.soft.constraints):
            value = labels.get(constraint.topology_key)
            if value is None:
                return state.soft_worst
            count = state.soft.counts[i].get(value, 0)
            total += count * state.soft_weights[i] + constraint.max_skew - 1
        return -total
