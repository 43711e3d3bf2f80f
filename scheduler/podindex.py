"""Every pod placed on a node (bound or assumed), found by namespace and label, and the
inter-pod terms of placed pods, found by the labels a pod must have to match them.

Inter-pod affinity and topology spread count the pods that match a label selector in some
namespaces, per topology domain; and every newcomer must be checked against the anti-affinity
of the pods already placed. Scanning every pod of the cluster for each decision would cost
more than the rest of the decision; instead ``NodeInfo`` keeps this index current as pods are
added, assumed, removed and forgotten, and the plugins ask it only for what can match::

    candidates(namespace, selector)   pods of the namespace; through the smallest
                                      ``key in (values)`` requirement when there is one
    anti_affinity.matching(pod)       the distinct required anti-affinity terms of placed pods
                                      that may select the pod, each with how many pods hold
                                      it on each node
    affinity.matching(pod)            the same for the terms that add to scores (required
                                      affinity, preferred affinity and anti-affinity)

Replicas of one workload share their terms, so a newcomer is checked against each distinct
term once, not once per pod; and a term is found through its own ``key in (values)``
requirement, so a newcomer meets only the terms that name one of its labels (and the few that
name none). A cluster whose pods have no inter-pod terms keeps both empty.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

from kubeio.labels import LabelSelector
from scheduler.podfacts import PodFacts
from scheduler.podterms import AffinityTerm

if TYPE_CHECKING:
    from scheduler.nodeinfo import NodeInfo

Placed = tuple[PodFacts, "NodeInfo"]
REQUIRED_AFFINITY = "required-affinity"
PREFERRED_AFFINITY = "preferred-affinity"
PREFERRED_ANTI_AFFINITY = "preferred-anti-affinity"
ScoredTerm = tuple[str, int, AffinityTerm]
"""(kind, weight, term): what a placed pod's term adds to the score of a matching newcomer."""
K = TypeVar("K")
_ANY_LABELS = ("", "", "")


class TermIndex(Generic[K]):
    """Terms of placed pods (keyed by ``K``, which holds the term) with the number of pods
    holding each on each node, found by the labels a pod needs to match them."""

    def __init__(self) -> None:
        self._holders: dict[K, Counter[str]] = {}
        self._by_label: dict[tuple[str, str, str], set[K]] = {}

    def __bool__(self) -> bool:
        return bool(self._holders)

    def __len__(self) -> int:
        return len(self._holders)

    def count(self, key: K, term: AffinityTerm, node_name: str, sign: int) -> None:
        holders = self._holders.get(key)
        if holders is None:
            if sign < 0:
                return
            holders = self._holders[key] = Counter()
            for entry in _entries(term):
                self._by_label.setdefault(entry, set()).add(key)
        holders[node_name] += sign
        if holders[node_name] <= 0:
            del holders[node_name]
            if not holders:
                del self._holders[key]
                for entry in _entries(term):
                    keys = self._by_label[entry]
                    keys.discard(key)
                    if not keys:
                        del self._by_label[entry]

    def matching(self, pod: PodFacts) -> Iterator[tuple[K, Counter[str]]]:
        """Terms that may select ``pod`` (the caller still matches them), with holders."""
        keys = set(self._by_label.get(_ANY_LABELS, ()))
        for label, value in pod.labels.items():
            keys |= self._by_label.get((pod.namespace, label, value), set())
        for key in keys:
            yield key, self._holders[key]


def _entries(term: AffinityTerm) -> list[tuple[str, str, str]]:
    """Where a term is found: under (namespace, label, value) for each namespace it is
    limited to and each value of its narrowest ``in`` requirement; else under any labels."""
    if term.namespace_selector is not None or term.selector is None:
        return [_ANY_LABELS]
    narrowest = None
    for requirement in term.selector.requirements:
        if requirement.operator == "in" and (
            narrowest is None or len(requirement.values) < len(narrowest.values)
        ):
            narrowest = requirement
    if narrowest is None:
        return [_ANY_LABELS]
    return [(ns, narrowest.key, v) for ns in term.namespaces for v in narrowest.values]


class PodIndex:
    def __init__(self) -> None:
        self._by_namespace: dict[str, dict[str, Placed]] = {}
        self._by_label: dict[tuple[str, str, str], set[str]] = {}
        self._where: dict[str, Placed] = {}
        self.anti_affinity: TermIndex[AffinityTerm] = TermIndex()
        """Required anti-affinity terms of placed pods."""
        self.affinity: TermIndex[ScoredTerm] = TermIndex()
        """Scoring terms of placed pods."""

    def add(self, pod: PodFacts, node: NodeInfo) -> None:
        self.remove(pod.uid)
        placed = (pod, node)
        self._where[pod.uid] = placed
        self._by_namespace.setdefault(pod.namespace, {})[pod.uid] = placed
        for key, value in pod.labels.items():
            self._by_label.setdefault((pod.namespace, key, value), set()).add(pod.uid)
        if pod.terms.any:
            self._count_terms(pod, node.name, +1)

    def remove(self, uid: str, node: NodeInfo | None = None) -> None:
        """Forget the pod; with ``node``, only if that is where the index has it."""
        placed = self._where.get(uid)
        if placed is None or (node is not None and placed[1] is not node):
            return
        del self._where[uid]
        pod = placed[0]
        in_namespace = self._by_namespace[pod.namespace]
        del in_namespace[uid]
        if not in_namespace:
            del self._by_namespace[pod.namespace]
        for key, value in pod.labels.items():
            holders = self._by_label.get((pod.namespace, key, value))
            if holders is not None:
                holders.discard(uid)
                if not holders:
                    del self._by_label[(pod.namespace, key, value)]
        if pod.terms.any:
            self._count_terms(pod, placed[1].name, -1)

    def _count_terms(self, pod: PodFacts, node_name: str, sign: int) -> None:
        terms = pod.terms
        for term in terms.required_anti_affinity:
            self.anti_affinity.count(term, term, node_name, sign)
        scored: list[ScoredTerm] = [(REQUIRED_AFFINITY, 0, t) for t in terms.required_affinity]
        scored += [(PREFERRED_AFFINITY, w.weight, w.term) for w in terms.preferred_affinity]
        scored += [
            (PREFERRED_ANTI_AFFINITY, w.weight, w.term) for w in terms.preferred_anti_affinity
        ]
        for key in scored:
            self.affinity.count(key, key[2], node_name, sign)

    def namespaces(self) -> Iterable[str]:
        return self._by_namespace.keys()

    def candidates(self, namespace: str, selector: LabelSelector | None) -> Iterator[Placed]:
        """Pods of ``namespace`` that may match ``selector`` (the caller still matches them):
        all of them, or those holding one of the values of the most selective ``in``."""
        pods = self._by_namespace.get(namespace)
        if not pods or selector is None:
            return iter(())
        narrowest: set[str] | None = None
        for requirement in selector.requirements:
            if requirement.operator != "in":
                continue
            holders: set[str] = set()
            for value in requirement.values:
                holders |= self._by_label.get((namespace, requirement.key, value), set())
            if narrowest is None or len(holders) < len(narrowest):
                narrowest = holders
        if narrowest is None:
            return iter(pods.values())
        return (pods[uid] for uid in narrowest)
