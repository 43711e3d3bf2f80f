"""The extension points, each a small Protocol with its contract.

PreFilter: ``prefilter(pod, cluster)`` runs once per pod and decision, before any filter, on
the whole cluster (``ClusterView``: every node, the pod index, the namespaces). It returns the
plugin's per-pod state — counts by topology domain, the pod's terms resolved — or ``None`` when
the plugin has nothing to check for this pod, which is what keeps a pod without inter-pod
terms or spread constraints as cheap as before. The state lands in ``PodContext.cycle`` under
the plugin's name, for its filter and score to read, like kube-scheduler's CycleState.

A prefilter's state may also rule out every node at once (its ``rejection``, read through
``PodContext.rejection``): what kube-scheduler's PreFilter plugins refuse for the pod as a
whole (a claim not found, an ``Immediate`` claim not bound yet). The decider then filters no
node and says why once.

Filter: ``filter(ctx, node)`` returns the reasons the pod cannot go on ``node`` — short,
countable phrases such as ``"node(s) were unschedulable"`` that the summary groups — or an
empty tuple when it may. Filters are pure and cheap; they run for every node and every pod.

Score: ``score(ctx, node)`` returns a raw number, higher is better, for a node that passed every
filter. The framework scales each plugin's raw scores to 0..100 over the feasible nodes
(the best node gets 100) and multiplies by the plugin's weight.

PreFilter extensions (kube-scheduler's ``PreFilterExtensions``): a plugin whose per-pod state
counts placed pods keeps it true when a what-if takes a pod off a node or puts one on — the
victims of a preemption, the pods nominated to a node (``scheduler.preemption.whatif``).
``copy_state`` gives a copy the what-if may change; ``add_pod``/``remove_pod`` change it.

Preemption (kube's ``Unschedulable`` versus ``UnschedulableAndUnresolvable``): a filter that
refused a node says with ``resolvable(ctx, node)`` whether taking pods off the node could
change its answer. A filter without the method never can: preemption never evicts for a
taint, a node selector, a missing Bandwidth object or a request larger than the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from scheduler.nodeinfo import NodeInfo
from scheduler.podfacts import PodFacts, WorkloadKey
from scheduler.podindex import PodIndex

if TYPE_CHECKING:
    from scheduler.nodetable import Floats, Mask, NodeTable, Rows
    from scheduler.volumes.catalog import VolumeCatalog

Reasons = tuple[str, ...]
FITS: Reasons = ()


@dataclass(frozen=True, slots=True)
class PodRejection:
    """Why no node can take the pod, found once before any node is filtered (kube-scheduler's
    PreFilter rejections), worded as kube-scheduler words it; ``unsupported`` when the pod
    needs something this scheduler does not evaluate."""

    reason: str
    unsupported: bool = False
    label: str = ""
    """The reason without object names, for metric labels (``reason`` when empty)."""


@dataclass(frozen=True, slots=True)
class PodContext:
    """The pod being scheduled, with what is known of its workload."""

    pod: PodFacts
    workload: WorkloadKey | None = None
    expected_replicas: int | None = None
    siblings_placed: int = 0
    cycle: Mapping[str, object] = field(default_factory=dict)
    """Per-plugin state from ``prefilter``, by plugin name."""
    nominated: Mapping[str, tuple[PodFacts, ...]] = field(default_factory=dict)
    """Pods of at least this pod's priority nominated to each node (a preemption made room
    for them there): filters count them as placed (``decide.filter_node``)."""

    @property
    def siblings_to_come(self) -> int:
        """How many more siblings are expected after this pod (0 when unknown)."""
        if self.expected_replicas is None:
            return 0
        return max(0, self.expected_replicas - self.siblings_placed - 1)

    @property
    def rejection(self) -> PodRejection | None:
        """A prefilter's verdict that no node can take the pod (its state's ``rejection``)."""
        for state in self.cycle.values():
            rejection = getattr(state, "rejection", None)
            if isinstance(rejection, PodRejection):
                return rejection
        return None


class ClusterView(Protocol):
    """What a prefilter may read: the scheduler's view of the cluster, under its lock."""

    @property
    def nodes(self) -> Mapping[str, NodeInfo]: ...

    @property
    def pod_index(self) -> PodIndex: ...

    @property
    def namespaces(self) -> Mapping[str, Mapping[str, str]]:
        """Labels of every known namespace, by name."""
        ...

    @property
    def volumes(self) -> VolumeCatalog:
        """Claims, volumes and storage classes, with in-flight bindings assumed."""
        ...


class PreFilterPlugin(Protocol):
    name: str

    def prefilter(self, pod: PodFacts, cluster: ClusterView) -> object | None: ...


class FilterPlugin(Protocol):
    name: str

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons: ...


class ScorePlugin(Protocol):
    name: str

    def score(self, ctx: PodContext, node: NodeInfo) -> float: ...


@runtime_checkable
class PreFilterExtensions(Protocol):
    name: str

    def copy_state(self, state: object) -> object: ...

    def add_pod(self, state: object, pod: PodFacts, placed: PodFacts, node: NodeInfo) -> None: ...

    def remove_pod(
        self, state: object, pod: PodFacts, placed: PodFacts, node: NodeInfo
    ) -> None: ...


@runtime_checkable
class Resolvable(Protocol):
    def resolvable(self, ctx: PodContext, node: NodeInfo) -> bool: ...


@runtime_checkable
class RowFilter(Protocol):
    """A filter that also runs over every node at once (``scheduler.nodetable``).

    ``filter_rows`` gives, for every row of the table, whether ``filter`` would return
    ``FITS`` — exactly, or ``None`` when it cannot say for this pod (the decision then calls
    ``filter`` per node). ``explain_rows`` gives, for rows it refused, the reasons ``filter``
    would return: each reason with which of ``rows`` carry it, in the order ``filter`` lists
    them on one node."""

    name: str

    def filter_rows(self, ctx: PodContext, table: NodeTable) -> Mask | None: ...

    def explain_rows(
        self, ctx: PodContext, table: NodeTable, rows: Rows
    ) -> list[tuple[str, Mask]]: ...


@runtime_checkable
class RowExceptions(Protocol):
    """A row filter whose answer is not the array's on some rows (``filter`` is called there)."""

    def exact_rows(self, ctx: PodContext, table: NodeTable) -> list[int]: ...


@runtime_checkable
class RowScore(Protocol):
    """A score that also runs over many nodes at once: ``score`` of each of ``rows``, or
    ``None`` when it cannot for this pod (``score`` is then called per node)."""

    name: str

    def score_rows(self, ctx: PodContext, table: NodeTable, rows: Rows) -> Floats | None: ...
