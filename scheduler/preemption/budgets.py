"""PodDisruptionBudgets, as preemption reads them: which victims would break one.

``Budget.read`` takes a ``policy/v1`` PodDisruptionBudget; ``Budgets`` is the watch cache's
handler and hands out the current ones. ``split_by_budget`` is kube-scheduler's
``filterPodsWithPDBViolation``: walking the victims in order, each budget matching a victim
(same namespace, selector matching its labels, not already in ``status.disruptedPods``) gives
up one of its ``status.disruptionsAllowed``; a victim for which some budget goes below zero
would violate it. A budget with no selector, or an empty one, matches no pod; a pod without
labels matches none. Nothing but the order is guaranteed: preemption may still take a
violating victim when nothing else makes room, and counts it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubeio.labels import LabelSelector
from kubeio.watchcache import DELETED
from scheduler.podfacts import PodFacts
from scheduler.podterms import label_selector, selector_matches

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Budget:
    namespace: str
    name: str
    selector: LabelSelector | None
    disruptions_allowed: int
    disrupted: frozenset[str] = frozenset()
    """Pod names in ``status.disruptedPods``: already counted by the apiserver."""

    @classmethod
    def read(cls, pdb: Mapping[str, Any]) -> Budget:
        metadata = pdb.get("metadata") or {}
        spec = pdb.get("spec") or {}
        status = pdb.get("status") or {}
        try:
            allowed = int(status.get("disruptionsAllowed") or 0)
        except (TypeError, ValueError):
            allowed = 0
        return cls(
            namespace=str(metadata.get("namespace", "")),
            name=str(metadata.get("name", "")),
            selector=label_selector(spec.get("selector")),
            disruptions_allowed=allowed,
            disrupted=frozenset(str(n) for n in (status.get("disruptedPods") or {})),
        )

    def covers(self, pod: PodFacts) -> bool:
        return (
            pod.namespace == self.namespace
            and bool(pod.labels)
            and self.selector is not None
            and not self.selector.is_empty()
            and selector_matches(self.selector, pod.labels)
            and pod.name not in self.disrupted
        )


def split_by_budget(
    pods: Sequence[PodFacts], budgets: Iterable[Budget]
) -> tuple[list[PodFacts], list[PodFacts]]:
    """``(violating, not violating)``, each in the order given."""
    budgets = list(budgets)
    allowed = [budget.disruptions_allowed for budget in budgets]
    violating: list[PodFacts] = []
    sparing: list[PodFacts] = []
    for pod in pods:
        violates = False
        for i, budget in enumerate(budgets):
            if budget.covers(pod):
                allowed[i] -= 1
                violates = violates or allowed[i] < 0
        (violating if violates else sparing).append(pod)
    return violating, sparing


class Budgets:
    """The cluster's PodDisruptionBudgets, from a watch cache (any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, Budget] = {}

    def on_pdb(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        budget = Budget.read(obj)
        key = f"{budget.namespace}/{budget.name}"
        with self._lock:
            if kind == DELETED:
                self._by_key.pop(key, None)
            else:
                self._by_key[key] = budget

    def current(self) -> list[Budget]:
        with self._lock:
            return list(self._by_key.values())
