"""The cluster as the scheduler sees it, kept current by watch caches.

``ClusterState`` owns the node infos, the workload indexes, the index of placed pods by
namespace and label (``pod_index``) and the labels of namespaces. Watch handlers (one thread
per cache) and the scheduling thread share it under ``lock``; the decision for one pod runs under
the lock, so it sees one consistent view including every in-flight (assumed) decision.

Pods nominated to a node by a preemption are in ``nominator`` (``scheduler.preemption``):
``context_for`` hands each decision the ones it must leave room for.

Assumed pods::

    Initial ──assume()──► Assumed ──pod watch shows it bound──► Added
                             ├──────forget() (reserve or bind failed)──► Forgotten
                             └──────pod watch shows it finished or deleted──► Forgotten

A pod bound and finished while the pod watch was away arrives bound and terminal in one event:
it is Forgotten, never Added. Pods are keyed by UID: a pod made again under the same name is
a DELETED and an ADDED (``kubeio.watchcache``), so the old one's charge goes with it. A pod's
volumes are assumed and forgotten with it (``volumes``, a ``VolumeCatalog``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from bandwidth.budget import AXES, Usage
from bandwidth.dra import DraHolding
from bandwidth.model import MAX_RESERVATIONS, MalformedBandwidth, NodeBandwidth, parse_bandwidth
from bandwidth.request import BandwidthRequest
from kubeio.objects import controller_reference
from kubeio.watchcache import DELETED
from scheduler.config import SchedulerConfig
from scheduler.decide import prefilter
from scheduler.nodeinfo import NodeFacts, NodeInfo
from scheduler.nodetable import NodeTable
from scheduler.plugins.framework import PodContext
from scheduler.plugins.registry import default_prefilters
from scheduler.podfacts import (
    PodFacts,
    WorkloadKey,
    read_pod,
    workload_of,
)
from scheduler.podindex import PodIndex
from scheduler.preemption.nominator import Nominator
from scheduler.queue import SchedulingQueue
from scheduler.volumes.catalog import VolumeCatalog

JSON = dict[str, Any]

log = structlog.get_logger("scheduler.cluster")


class ClusterState:
    def __init__(
        self,
        config: SchedulerConfig,
        queue: SchedulingQueue,
        on_invalid_ledger: Callable[[str, str], None] = lambda node, problem: None,
    ) -> None:
        self.config = config
        self.queue = queue
        self.lock = threading.RLock()
        self.nodes: dict[str, NodeInfo] = {}
        self._bound: dict[str, tuple[str, WorkloadKey | None]] = {}
        self._assumed: dict[str, tuple[str, WorkloadKey | None]] = {}
        self._deployment_of_replicaset: dict[str, str] = {}
        self._replicas: dict[WorkloadKey, int] = {}
        self._placed: dict[WorkloadKey, int] = {}
        self._sibling_nodes: dict[WorkloadKey, set[str]] = {}
        self._facts: dict[str, PodFacts] = {}
        self._on_invalid_ledger = on_invalid_ledger
        self.pod_index = PodIndex()
        self.table = NodeTable()
        self.namespaces: dict[str, Mapping[str, str]] = {}
        self.nominator = Nominator()
        self._prefilters = default_prefilters()
        self.volumes = VolumeCatalog(self.lock, on_change=queue.cluster_changed)

    def _node(self, name: str) -> NodeInfo:
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name, index=self.pod_index, table=self.table)
            info.row = self.table.add(info)
        return info

    def _count_placed(self, workload: WorkloadKey | None, sign: int, node_name: str = "") -> None:
        if workload is not None and node_name:
            holders = self._sibling_nodes.setdefault(workload, set())
            if self.nodes[node_name].siblings.get(workload):
                holders.add(node_name)
            else:
                holders.discard(node_name)
                if not holders:
                    del self._sibling_nodes[workload]
        if workload is not None:
            count = self._placed.get(workload, 0) + sign
            if count > 0:
                self._placed[workload] = count
            else:
                self._placed.pop(workload, None)

    # Watch handlers -------------------------------------------------------------------------

    def on_node(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        with self.lock:
            if kind == DELETED and old is not None:
                name = str(old["metadata"]["name"])
                info = self.nodes.get(name)
                if info is not None:
                    info.set_facts(None)
                return
            assert new is not None
            facts = NodeFacts.read(new)
            info = self._node(facts.name)
            changed = info.facts != facts
            if changed:
                info.set_facts(facts)
        if changed:
            self.queue.cluster_changed()

    def on_bandwidth(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        released = True
        with self.lock:
            if kind == DELETED and old is not None:
                gone = self._node(str(old["metadata"]["name"]))
                gone.set_bandwidth(None)
                gone.set_ledger_limit(MAX_RESERVATIONS)
                return
            assert new is not None
            name = str(new["metadata"]["name"])  # the name writers address, not spec.node
            info = self._node(name)
            held = info.bandwidth
            metadata = new["metadata"]
            if (
                held is not None
                and held.generation
                and held.uid == metadata.get("uid")
                and held.generation >= int(metadata.get("generation") or 0)
            ):
                # A status write (the spec, all the scheduler reads, is the same), or a spec
                # the binder's own later write has overtaken (``ledger_written``).
                return
            try:
                ledger = parse_bandwidth(new)
            except MalformedBandwidth as error:
                info.set_bandwidth(None, f"node(s) had an unreadable Bandwidth object: {error}")
                self._on_invalid_ledger(name, str(error))
                return
            released = self._hold_ledger(info, ledger)
        if released:
            self.queue.cluster_changed()

    def ledger_written(self, ledger: NodeBandwidth) -> None:
        """Hold the spec our own write just committed, ahead of its watch event: the next
        batch for the node is computed on it, and the event, of the same generation, is not
        parsed again. A copy the watch has already moved past, or another object since, is
        left alone."""
        with self.lock:
            info = self.nodes.get(ledger.name)
            held = info.bandwidth if info is not None else None
            if (
                info is None
                or held is None
                or held.uid != ledger.uid
                or held.generation >= ledger.generation
            ):
                return
            released = self._hold_ledger(info, ledger)
        if released:
            self.queue.cluster_changed()

    def _hold_ledger(self, info: NodeInfo, ledger: NodeBandwidth) -> bool:
        """Whether the new ledger frees bandwidth the previous one held."""
        previous = info.bandwidth
        if previous is not None and previous.uid != ledger.uid:
            info.set_ledger_limit(MAX_RESERVATIONS)  # another object: its own size
        info.set_bandwidth(ledger)
        if ledger.problems:
            self._on_invalid_ledger(info.name, "; ".join(ledger.problems))
        if previous is not None and previous.capacity == ledger.capacity:
            return not set(previous.reservations) <= set(ledger.reservations)
        return True

    def set_dra_holding(self, node_name: str, holding: DraHolding) -> None:
        """What DRA claims hold on the node now; unschedulable pods are retried when it is less."""
        with self.lock:
            info = self._node(node_name)
            before = info.dra.usage
            info.set_dra(holding)
            freed = any(holding.usage.on(axis) < before.on(axis) for axis in AXES)
        if freed:
            self.queue.cluster_changed()

    def on_namespace(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        """Namespace labels, for the ``namespaceSelector`` of inter-pod terms."""
        obj = new if new is not None else old
        assert obj is not None
        metadata = obj["metadata"]
        name = str(metadata["name"])
        labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
        with self.lock:
            if kind == DELETED:
                changed = self.namespaces.pop(name, None) is not None
            else:
                changed = self.namespaces.get(name) != labels
                self.namespaces[name] = labels
        if changed:
            self.queue.cluster_changed()

    def on_replicaset(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        metadata = obj["metadata"]
        key = f"{metadata.get('namespace')}/{metadata['name']}"
        owner = controller_reference(metadata)
        deployment = str(owner.get("name", "")) if owner.get("kind") == "Deployment" else ""
        workload = WorkloadKey(
            "Deployment" if deployment else "ReplicaSet",
            str(metadata.get("namespace", "")),
            deployment or str(metadata["name"]),
        )
        with self.lock:
            if kind == DELETED:
                self._deployment_of_replicaset.pop(key, None)
                return
            self._deployment_of_replicaset[key] = deployment
            self._replicas[workload] = int((obj.get("spec") or {}).get("replicas") or 0)

    def on_statefulset(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        metadata = obj["metadata"]
        workload = WorkloadKey("StatefulSet", str(metadata.get("namespace", "")), metadata["name"])
        with self.lock:
            if kind == DELETED:
                self._replicas.pop(workload, None)
            else:
                self._replicas[workload] = int((obj.get("spec") or {}).get("replicas") or 0)

    def on_pod(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        received = time.monotonic()
        policy = self.config.request_policy
        if kind == DELETED:
            assert old is not None
            uid = str(old["metadata"].get("uid", ""))
            self._facts.pop(uid, None)
            self.queue.remove(uid)
            with self.lock:
                freed = self._unbind(uid)
                self._drop_assumed(uid)
                freed = self.nominator.drop(uid) is not None or freed
            if freed:
                self.queue.cluster_changed()
            return
        assert new is not None
        facts = read_pod(new, policy)
        previous = self._facts.get(facts.uid)
        if previous == facts:
            return
        self._facts[facts.uid] = facts
        if facts.bound or facts.terminal:
            self.queue.remove(facts.uid)
        with self.lock:
            freed = self.nominator.observe(facts)
            placed = False
            if facts.bound and not facts.terminal:
                placed = True
                workload = workload_of(facts, self._deployment_of_replicaset)
                self._drop_assumed(facts.uid)
                self._unbind(facts.uid)
                self._node(facts.node_name).add_pod(facts, workload)
                self._bound[facts.uid] = (facts.node_name, workload)
                self._count_placed(workload, +1, facts.node_name)
            elif facts.terminal:
                # Bound and finished in one event (a watch gap): our own decision too.
                dropped = self._drop_assumed(facts.uid)
                freed = self._unbind(facts.uid) or dropped or freed
        if freed:
            self.queue.cluster_changed()
        elif placed:
            self.queue.cluster_changed(helps=_counts_placed_pods)
        if self._is_ours_to_schedule(facts) and not _nomination_news_only(previous, facts):
            self.queue.add_or_update(facts, received)

    def _is_ours_to_schedule(self, facts: PodFacts) -> bool:
        return (
            facts.scheduler_name == self.config.scheduler_name
            and not facts.bound
            and not facts.terminal
            and not facts.deleting
            and not facts.gated
        )

    def _unbind(self, uid: str) -> bool:
        placed = self._bound.pop(uid, None)
        if placed is None:
            return False
        node_name, workload = placed
        self._node(node_name).remove_pod(uid, workload)
        self._count_placed(workload, -1, node_name)
        return True

    def _drop_assumed(self, uid: str) -> bool:
        assumed = self._assumed.pop(uid, None)
        if assumed is None:
            return False
        node_name, workload = assumed
        self._node(node_name).forget(uid, workload)
        self._count_placed(workload, -1, node_name)
        return True

    # Used by the scheduling loop and the binder ---------------------------------------------

    def context_for(self, pod: PodFacts) -> PodContext:
        """The pod with its workload and each prefilter's state (counts over the whole
        cluster): hold ``lock`` from here through the decision and ``assume``."""
        with self.lock:
            workload = workload_of(pod, self._deployment_of_replicaset)
            ctx = PodContext(
                pod=pod,
                workload=workload,
                expected_replicas=self._replicas.get(workload) if workload else None,
                siblings_placed=self._placed.get(workload, 0) if workload else 0,
                nominated=self.nominator.for_pod(pod, self._assumed) if self.nominator else {},
            )
            return prefilter(ctx, self, self._prefilters)

    def assume(self, ctx: PodContext, node_name: str) -> None:
        with self.lock:
            self._drop_assumed(ctx.pod.uid)
            self._node(node_name).assume(ctx.pod, ctx.workload)
            self._assumed[ctx.pod.uid] = (node_name, ctx.workload)
            self._count_placed(ctx.workload, +1, node_name)
            self.volumes.assume(ctx, self.nodes[node_name])

    def forget(self, uid: str) -> None:
        with self.lock:
            self._drop_assumed(uid)
            self.volumes.revert(uid)
        self.queue.cluster_changed()

    def bound_pod_charges(self, node_name: str) -> Mapping[str, BandwidthRequest]:
        """Bandwidth of live pods bound to the node, by UID (whoever scheduled them), but for
        pods whose bandwidth a DRA claim holds (``dra_usage`` counts those)."""
        with self.lock:
            info = self.nodes.get(node_name)
            if info is None:
                return {}
            held_by_claims = info.dra.pod_uids
            return {
                uid: p.bandwidth
                for uid, p in info.pods.items()
                if not p.bandwidth.is_zero() and uid not in held_by_claims
            }

    def dra_usage(self, node_name: str) -> Usage:
        """What DRA claims hold on the node (zero unless DRA sharing is on)."""
        with self.lock:
            info = self.nodes.get(node_name)
            return info.dra.usage if info is not None else Usage()

    def sibling_nodes(self, workload: WorkloadKey | None) -> list[NodeInfo]:
        """Nodes holding pods of the workload (bound or assumed)."""
        if workload is None:
            return []
        with self.lock:
            return [self.nodes[name] for name in sorted(self._sibling_nodes.get(workload, ()))]

    def node_holding(self, uid: str) -> NodeInfo | None:
        """The node whose ledger already reserves bandwidth for the pod, if any."""
        with self.lock:
            holders = self.table.holders(uid)
            return self.table.nodes[holders[0]] if holders else None

    def node_exists(self, node_name: str) -> bool:
        """Whether the node watch still shows the node (in-flight work re-checks this)."""
        with self.lock:
            info = self.nodes.get(node_name)
            return info is not None and info.facts is not None

    def limit_ledger(self, node_name: str, reservations: int) -> None:
        """The apiserver refused a ledger longer than ``reservations`` as too large."""
        with self.lock:
            self._node(node_name).set_ledger_limit(min(MAX_RESERVATIONS, reservations))

    def ledger_limit(self, node_name: str) -> int:
        with self.lock:
            info = self.nodes.get(node_name)
            return info.ledger_limit if info is not None else MAX_RESERVATIONS

    def ledger_of(self, node_name: str) -> NodeBandwidth | None:
        with self.lock:
            info = self.nodes.get(node_name)
            return info.bandwidth if info is not None else None


def _nomination_news_only(previous: PodFacts | None, facts: PodFacts) -> bool:
    """Only what a preemption writes changed (the nomination, the start time): the pod's
    chances did not, so it is not worth another try (kube's queue ignores status updates)."""
    return previous is not None and previous == replace(
        facts, nominated_node=previous.nominated_node, started=previous.started
    )


def _counts_placed_pods(pod: PodFacts) -> bool:
    return pod.counts_placed_pods
