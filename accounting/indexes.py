"""Indexes over the accounting controller's watch caches, kept by the watch handlers.

- pods by node            ``node name -> {namespace/name}``: the pods the books of a node read;
- pods by ReplicaSet      ``namespace/replicaset -> {namespace/name}``: whose workload changes
                          when a ReplicaSet gets (or loses) its Deployment;
- holders                 ``pod UID -> {Bandwidth name}``: the ledgers reserving for a pod, to
                          reconcile when the pod changes.

Each update returns the node names whose books it may change, for the caller to queue. One
lock guards the three; it is never held while calling anything else.
"""

from __future__ import annotations

import threading

from accounting.objects import key_of, metadata_of, node_name_of_pod, replicaset_of_pod
from accounting.objects import reserved_uids as reserved_uids_of
from kubeio.rest import JSON


class Indexes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pods_by_node: dict[str, set[str]] = {}
        self._pods_by_replicaset: dict[str, set[str]] = {}
        self._holders: dict[str, set[str]] = {}

    def pod_changed(self, old: JSON | None, new: JSON | None) -> set[str]:
        """Index a pod event; the nodes whose books it touches."""
        key = key_of(new or old)
        uid = str(metadata_of(new or old).get("uid", ""))
        old_node, new_node = node_name_of_pod(old), node_name_of_pod(new)
        with self._lock:
            _move(self._pods_by_node, key, old_node, new_node)
            _move(self._pods_by_replicaset, key, replicaset_of_pod(old), replicaset_of_pod(new))
            names = {old_node, new_node} | self._holders.get(uid, set())
        return names - {""}

    def bandwidth_changed(self, name: str, old: JSON | None, new: JSON | None) -> set[str]:
        """Index a Bandwidth event; the pod UIDs it no longer reserves for."""
        before, after = reserved_uids_of(old), reserved_uids_of(new)
        with self._lock:
            for uid in before - after:
                holders = self._holders.get(uid)
                if holders is not None:
                    holders.discard(name)
                    if not holders:
                        del self._holders[uid]
            for uid in after - before:
                self._holders.setdefault(uid, set()).add(name)
        return before - after

    def pods_on(self, node: str) -> list[str]:
        with self._lock:
            return list(self._pods_by_node.get(node, ()))

    def pods_of_replicaset(self, key: str) -> list[str]:
        with self._lock:
            return list(self._pods_by_replicaset.get(key, ()))


def _move(index: dict[str, set[str]], key: str, old: str, new: str) -> None:
    if old == new:
        if new:
            index.setdefault(new, set()).add(key)
        return
    if old:
        members = index.get(old)
        if members is not None:
            members.discard(key)
            if not members:
                del index[old]
    if new:
        index.setdefault(new, set()).add(key)
