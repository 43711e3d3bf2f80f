"""The cluster as the scheduler sees it, kept current by watch caches.

``ClusterState`` owns the node infos and the workload indexes. Watch handlers (one thread per
cache) and the scheduling thread share it under ``lock``; the decision for one pod runs under
the lock, so it sees one consistent view including every in-flight (assumed) decision.

Assumed pods::

    Initial ──assume()──► Assumed ──pod watch shows it bound──► Added
                             └──────forget() (reserve or bind failed)──► Forgotten
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from bandwidth.model import MalformedBandwidth, NodeBandwidth, parse_bandwidth
from bandwidth.request import BandwidthRequest
from kubeio.objects import controller_reference
from kubeio.watchcache import DELETED
from scheduler.config import SchedulerConfig
from scheduler.nodeinfo import NodeFacts, NodeInfo
from scheduler.plugins.framework import PodContext
from scheduler.podfacts import (
    PodFacts,
    WorkloadKey,
    read_pod,
    workload_of,
)
from scheduler.queue import SchedulingQueue

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

    def _node(self, name: str) -> NodeInfo:
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name)
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
                    info.facts = None
                return
            assert new is not None
            facts = NodeFacts.read(new)
            info = self._node(facts.name)
            changed = info.facts != facts
            info.facts = facts
        if changed:
            self.queue.cluster_changed()

    def on_bandwidth(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        released = True
        with self.lock:
            if kind == DELETED and old is not None:
                self._node(str(old["metadata"]["name"])).set_bandwidth(None)
                return
            assert new is not None
            name = str(new["metadata"]["name"])  # the name writers address, not spec.node
            info = self._node(name)
            try:
                ledger = parse_bandwidth(new)
            except MalformedBandwidth as error:
                info.set_bandwidth(None, f"node(s) had an unreadable Bandwidth object: {error}")
                self._on_invalid_ledger(name, str(error))
                return
            previous = info.bandwidth
            info.set_bandwidth(ledger)
            if ledger.problems:
                self._on_invalid_ledger(name, "; ".join(ledger.problems))
            if previous is not None and previous.capacity == ledger.capacity:
                released = not set(previous.reservations) <= set(ledger.reservations)
        if released:
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
        policy = self.config.request_policy
        if kind == DELETED:
            assert old is not None
            uid = str(old["metadata"].get("uid", ""))
            self._facts.pop(uid, None)
            self.queue.remove(uid)
            with self.lock:
                freed = self._unbind(uid)
                self._drop_assumed(uid)
            if freed:
                self.queue.cluster_changed()
            return
        assert new is not None
        facts = read_pod(new, policy)
        if self._facts.get(facts.uid) == facts:
            return
        self._facts[facts.uid] = facts
        if facts.bound or facts.terminal:
            self.queue.remove(facts.uid)
        with self.lock:
            freed = False
            if facts.bound and not facts.terminal:
                workload = workload_of(facts, self._deployment_of_replicaset)
                self._drop_assumed(facts.uid)
                self._unbind(facts.uid)
                self._node(facts.node_name).add_pod(facts, workload)
                self._bound[facts.uid] = (facts.node_name, workload)
                self._count_placed(workload, +1, facts.node_name)
            elif facts.terminal:
                freed = self._unbind(facts.uid)
        if freed:
            self.queue.cluster_changed()
        if self._is_ours_to_schedule(facts):
            self.queue.add_or_update(facts)

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

    def _drop_assumed(self, uid: str) -> None:
        assumed = self._assumed.pop(uid, None)
        if assumed is not None:
            node_name, workload = assumed
            self._node(node_name).forget(uid, workload)
            self._count_placed(workload, -1, node_name)

    # Used by the scheduling loop and the binder ---------------------------------------------

    def context_for(self, pod: PodFacts) -> PodContext:
        with self.lock:
            workload = workload_of(pod, self._deployment_of_replicaset)
            return PodContext(
                pod=pod,
                workload=workload,
                expected_replicas=self._replicas.get(workload) if workload else None,
                siblings_placed=self._placed.get(workload, 0) if workload else 0,
            )

    def assume(self, ctx: PodContext, node_name: str) -> None:
        with self.lock:
            self._drop_assumed(ctx.pod.uid)
            self._node(node_name).assume(ctx.pod, ctx.workload)
            self._assumed[ctx.pod.uid] = (node_name, ctx.workload)
            self._count_placed(ctx.workload, +1, node_name)

    def forget(self, uid: str) -> None:
        with self.lock:
            self._drop_assumed(uid)
        self.queue.cluster_changed()

    def bound_pod_charges(self, node_name: str) -> Mapping[str, BandwidthRequest]:
        """Bandwidth of live pods bound to the node, by UID (whoever scheduled them)."""
        with self.lock:
            info = self.nodes.get(node_name)
            if info is None:
                return {}
            return {uid: p.bandwidth for uid, p in info.pods.items() if not p.bandwidth.is_zero()}

    def sibling_nodes(self, workload: WorkloadKey | None) -> list[NodeInfo]:
        """Nodes holding pods of the workload (bound or assumed)."""
        if workload is None:
            return []
        with self.lock:
            return [self.nodes[name] for name in sorted(self._sibling_nodes.get(workload, ()))]

    def node_holding(self, uid: str) -> NodeInfo | None:
        """The node whose ledger already reserves bandwidth for the pod, if any."""
        with self.lock:
            return next((info for info in self.nodes.values() if info.holds(uid)), None)

    def node_exists(self, node_name: str) -> bool:
        """Whether the node watch still shows the node (in-flight work re-checks this)."""
        with self.lock:
            info = self.nodes.get(node_name)
            return info is not None and info.facts is not None

    def ledger_of(self, node_name: str) -> NodeBandwidth | None:
        with self.lock:
            info = self.nodes.get(node_name)
            return info.bandwidth if info is not None else None
