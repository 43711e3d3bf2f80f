"""Which pending pods are nominated to which node: room a preemption made, held for them.

A nomination comes from ``status.nominatedNodeName`` (whoever wrote it: this scheduler, another
replica of it, kube-scheduler) or from this scheduler's own preemption, the moment it decides,
before its status write comes back through the watch::

    pending ──preemption picks node N──► nominated to N ──bound (anywhere)──► gone
                                            │   ├──deleted, finished──────────► gone
                                            │   └──preemption finds nothing──► gone (cleared)
                                            └──a higher-priority preemption on N: cleared

Filters count a pod nominated to a node as placed there for every pod of lower or equal
priority (``ClusterState.context_for`` → ``PodContext.nominated``), so the bandwidth freed for
it is not taken meanwhile; its own reservation is written only when it is bound.

Not thread-safe: ``ClusterState`` calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Collection

from scheduler.podfacts import PodFacts


class Nominator:
    def __init__(self) -> None:
        self._nominated: dict[str, tuple[PodFacts, str]] = {}
        self._ours: set[str] = set()
        """Nominations this scheduler made: a watch event older than its own status write
        (showing no nomination yet) must not drop them."""

    def __bool__(self) -> bool:
        return bool(self._nominated)

    def __len__(self) -> int:
        return len(self._nominated)

    def nominate(self, pod: PodFacts, node: str) -> None:
        """This scheduler made room for ``pod`` on ``node``."""
        self._nominated[pod.uid] = (pod, node)
        self._ours.add(pod.uid)

    def drop(self, uid: str) -> str | None:
        """Forget the pod's nomination; the node it was nominated to, if any."""
        self._ours.discard(uid)
        held = self._nominated.pop(uid, None)
        return held[1] if held is not None else None

    def observe(self, pod: PodFacts) -> bool:
        """The pod as the watch shows it now; whether a nomination ended (other than by the
        pod's binding): the room held for it is free for others."""
        if pod.bound:
            self.drop(pod.uid)
            return False
        if pod.terminal or pod.deleting:
            return self.drop(pod.uid) is not None
        if pod.nominated_node:
            before = self.node_of(pod.uid)
            self._nominated[pod.uid] = (pod, pod.nominated_node)
            return before is not None and before != pod.nominated_node
        if pod.uid in self._ours:
            self._nominated[pod.uid] = (pod, self._nominated[pod.uid][1])
            return False
        return self._nominated.pop(pod.uid, None) is not None

    def node_of(self, uid: str) -> str | None:
        held = self._nominated.get(uid)
        return held[1] if held is not None else None

    def on_node(self, node: str) -> list[PodFacts]:
        return [pod for pod, where in self._nominated.values() if where == node]

    def for_pod(
        self, pod: PodFacts, in_flight: Collection[str] = ()
    ) -> dict[str, tuple[PodFacts, ...]]:
        """Per node, the pods nominated there that ``pod`` must leave room for: priority at
        least its own, not itself, not already assumed (``in_flight``: counted as such)."""
        found: dict[str, list[PodFacts]] = {}
        for other, node in self._nominated.values():
            if (
                other.uid != pod.uid
                and other.priority >= pod.priority
                and other.uid not in in_flight
            ):
                found.setdefault(node, []).append(other)
        return {node: tuple(pods) for node, pods in found.items()}
