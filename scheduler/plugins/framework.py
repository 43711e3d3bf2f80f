"""The two extension points, each a small Protocol with its contract.

Filter: ``filter(ctx, node)`` returns the reasons the pod cannot go on ``node`` — short,
countable phrases such as ``"node(s) were unschedulable"`` that the summary groups — or an
empty tuple when it may. Filters are pure and cheap; they run for every node and every pod.

Score: ``score(ctx, node)`` returns a raw number, higher is better, for a node that passed every
filter. The framework scales each plugin's raw scores to 0..100 over the feasible nodes
(the best node gets 100) and multiplies by the plugin's weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from scheduler.nodeinfo import NodeInfo
from scheduler.podfacts import PodFacts, WorkloadKey

Reasons = tuple[str, ...]
FITS: Reasons = ()


@dataclass(frozen=True, slots=True)
class PodContext:
    """The pod being scheduled, with what is known of its workload."""

    pod: PodFacts
    workload: WorkloadKey | None = None
    expected_replicas: int | None = None
    siblings_placed: int = 0

    @property
    def siblings_to_come(self) -> int:
        """How many more siblings are expected after this pod (0 when unknown)."""
        if self.expected_replicas is None:
            return 0
        return max(0, self.expected_replicas - self.siblings_placed - 1)


class FilterPlugin(Protocol):
    name: str

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons: ...


class ScorePlugin(Protocol):
    name: str

    def score(self, ctx: PodContext, node: NodeInfo) -> float: ...
