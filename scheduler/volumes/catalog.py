"""The volume objects the scheduler watches, with the bindings it has decided but not yet
written assumed on top: kube-scheduler's PV and PVC assume caches.

``VolumeCatalog`` shares ``ClusterState``'s lock, so a decision sees the volumes, the nodes and
the in-flight pods of one moment. Its watch handlers (one thread per kind) keep the apiserver's
view; ``assume`` lays the chosen node's plan over it, so the next decision already sees the
volume taken and the claim's node selected::

    Initial ──assume()──► Assumed ──watch shows an object newer than the assumed one──► Added
                             │          (our write landed, or someone else's: either way the
                             │           apiserver's object is the truth from then on)
                             └──revert() (reserve, volume binding or pod binding failed)──►
                                 Forgotten: the apiserver's object shows again

A plan is kept by pod UID until ``settle`` (volumes bound) or ``revert``. Both are idempotent.
Every change of a claim, volume, class, CSINode, CSIDriver or capacity wakes ``changed``
(what a volume binding waits on) and, unless it is a deletion, gives the unschedulable pods
another try (``on_change``): a claim bound, a volume added or a limit raised may let them in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import structlog

from kubeio.watchcache import DELETED, object_key
from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import PodContext
from scheduler.podfacts import PodFacts
from scheduler.volumes.claims import (
    PodVolumes,
    VolumePlan,
    attachable_volumes,
    find_pod_volumes,
    pod_volumes,
    volumes_of,
)
from scheduler.volumes.objects import (
    READ_WRITE_ONCE_POD,
    CapacityFacts,
    ClaimFacts,
    ClaimRef,
    ClassFacts,
    CSINodeFacts,
    DriverFacts,
    VolumeFacts,
    read_capacity,
    read_claim,
    read_class,
    read_csinode,
    read_driver,
    read_volume,
)

JSON = dict[str, Any]

log = structlog.get_logger("scheduler.volumes")


class VolumeCatalog:
    def __init__(self, lock: threading.RLock, on_change: Callable[[], None]) -> None:
        self._lock = lock
        self.changed = threading.Condition(lock)
        self._on_change = on_change
        self._claims: dict[str, ClaimFacts] = {}
        self._volumes: dict[str, VolumeFacts] = {}
        self._volumes_by_class: dict[str, set[str]] = {}
        self._classes: dict[str, ClassFacts] = {}
        self._csinodes: dict[str, CSINodeFacts] = {}
        self._drivers: dict[str, DriverFacts] = {}
        self._capacities: dict[str, CapacityFacts] = {}
        self._assumed_claims: dict[str, tuple[ClaimFacts, str]] = {}
        self._assumed_volumes: dict[str, tuple[VolumeFacts, str]] = {}
        self._plans: dict[str, VolumePlan] = {}

    # VolumeView: read with the lock held (a decision holds it) ------------------------------

    def claim(self, namespace: str, name: str) -> ClaimFacts | None:
        key = f"{namespace}/{name}"
        assumed = self._assumed_claims.get(key)
        return assumed[0] if assumed is not None else self._claims.get(key)

    def api_claim(self, namespace: str, name: str) -> ClaimFacts | None:
        return self._claims.get(f"{namespace}/{name}")

    def volume(self, name: str) -> VolumeFacts | None:
        assumed = self._assumed_volumes.get(name)
        return assumed[0] if assumed is not None else self._volumes.get(name)

    def api_volume(self, name: str) -> VolumeFacts | None:
        return self._volumes.get(name)

    def volumes_of_class(self, storage_class: str) -> Sequence[VolumeFacts]:
        names = sorted(self._volumes_by_class.get(storage_class, ()))
        return [volume for volume in map(self.volume, names) if volume is not None]

    def storage_class(self, name: str) -> ClassFacts | None:
        return self._classes.get(name)

    def default_storage_class(self) -> str:
        """The class the apiserver's DefaultStorageClass admission gives a claim naming
        none ("" when no class is marked default); of several, the name sorting first."""
        with self._lock:
            return min((c.name for c in self._classes.values() if c.default), default="")

    def csinode(self, name: str) -> CSINodeFacts | None:
        return self._csinodes.get(name)

    def driver(self, name: str) -> DriverFacts | None:
        return self._drivers.get(name)

    def capacities(self) -> Sequence[CapacityFacts]:
        return list(self._capacities.values())

    # Decisions --------------------------------------------------------------------------------

    def pod_volumes(self, pod: PodFacts, nodes: Mapping[str, NodeInfo]) -> PodVolumes | None:
        """The pod's claims resolved for one decision (None without claims)."""
        if not pod.claims:
            return None
        with self._lock:
            return pod_volumes(pod, self, self._read_write_once_pod_users(pod, nodes))

    def _read_write_once_pod_users(
        self, pod: PodFacts, nodes: Mapping[str, NodeInfo]
    ) -> dict[str, int]:
        """Pods other than ``pod``, bound or in flight, using each of its ReadWriteOncePod
        claims; the scan of every pod is done only for pods that have such a claim."""
        wanted = set()
        for ref in pod.claims:
            claim = None if ref.ephemeral else self._claims.get(f"{pod.namespace}/{ref.claim}")
            if claim is not None and READ_WRITE_ONCE_POD in claim.access_modes:
                wanted.add(claim.key)
        users: dict[str, int] = {}
        if not wanted:
            return users
        for info in nodes.values():
            for other in (*info.pods.values(), *info.assumed.values()):
                if other.uid == pod.uid:
                    continue
                for ref in other.claims:
                    key = f"{other.namespace}/{ref.claim}"
                    if not ref.ephemeral and key in wanted:
                        users[key] = users.get(key, 0) + 1
        return users

    def assume(self, ctx: PodContext, node: NodeInfo) -> None:
        """Lay the plan for ``node`` over the caches; the decision just found it feasible."""
        uid = ctx.pod.uid
        with self._lock:
            self._revert(uid)
            volumes = volumes_of(ctx)
            if volumes is None or volumes.rejection is not None or volumes.all_bound:
                return
            labels = node.facts.labels if node.facts is not None else {}
            plan, reasons = find_pod_volumes(volumes, node.name, labels)
            if reasons:  # the filter passed on this node under this lock: a bug if reached
                log.error("volume_plan_refused", pod=ctx.pod.key, node=node.name, reasons=reasons)
                problem = "no volume plan for the node chosen: " + ", ".join(reasons)
                self._plans[uid] = VolumePlan(node.name, problem=problem)
                return
            bindings = []
            for claim, volume in plan.bindings:
                bound = _bound_to(volume, claim)
                self._assumed_volumes[volume.name] = (bound, uid)
                bindings.append((claim, bound))
            provisions = []
            for claim in plan.provisions:
                selected = replace(claim, selected_node=node.name)
                self._assumed_claims[claim.key] = (selected, uid)
                provisions.append(selected)
            self._plans[uid] = VolumePlan(node.name, tuple(bindings), tuple(provisions))

    def plan_of(self, uid: str) -> VolumePlan | None:
        with self._lock:
            return self._plans.get(uid)

    def revert(self, uid: str) -> None:
        """Forget the pod's plan and show the apiserver's objects again."""
        with self._lock:
            self._revert(uid)

    def settle(self, uid: str) -> None:
        """The pod's volumes are bound: the watched objects say so, nothing is assumed."""
        with self._lock:
            self._revert(uid)

    def _revert(self, uid: str) -> None:
        if self._plans.pop(uid, None) is None:
            return
        for key in [k for k, (_, owner) in self._assumed_claims.items() if owner == uid]:
            del self._assumed_claims[key]
        for key in [k for k, (_, owner) in self._assumed_volumes.items() if owner == uid]:
            del self._assumed_volumes[key]

    def volume_limits(self, node: str) -> Mapping[str, int]:
        csinode = self._csinodes.get(node)
        return csinode.limits if csinode is not None else {}

    def attachable_of(self, pod: PodFacts) -> Mapping[str, str]:
        return attachable_volumes(pod, self) if pod.claims else {}

    # Watch handlers ---------------------------------------------------------------------------

    def on_claim(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        def apply() -> None:
            if new is None:
                assert old is not None
                key = object_key(old)
                self._claims.pop(key, None)
                self._assumed_claims.pop(key, None)
                return
            claim = read_claim(new)
            self._claims[claim.key] = claim
            assumed = self._assumed_claims.get(claim.key)
            if assumed is not None and claim.resource_version > assumed[0].resource_version:
                del self._assumed_claims[claim.key]

        self._update(kind, apply)

    def on_volume(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        def apply() -> None:
            if new is None:
                assert old is not None
                gone = self._volumes.pop(str(old["metadata"]["name"]), None)
                if gone is not None:
                    self._volumes_by_class.get(gone.storage_class, set()).discard(gone.name)
                    self._assumed_volumes.pop(gone.name, None)
                return
            volume = read_volume(new)
            previous = self._volumes.get(volume.name)
            if previous is not None and previous.storage_class != volume.storage_class:
                self._volumes_by_class.get(previous.storage_class, set()).discard(volume.name)
            self._volumes[volume.name] = volume
            self._volumes_by_class.setdefault(volume.storage_class, set()).add(volume.name)
            assumed = self._assumed_volumes.get(volume.name)
            if assumed is not None and volume.resource_version > assumed[0].resource_version:
                del self._assumed_volumes[volume.name]

        self._update(kind, apply)

    def on_storage_class(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        self._keep(kind, old, new, self._classes, read_class)

    def on_csinode(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        self._keep(kind, old, new, self._csinodes, read_csinode)

    def on_driver(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        self._keep(kind, old, new, self._drivers, read_driver)

    def on_capacity(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        self._keep(kind, old, new, self._capacities, read_capacity)

    def _keep(
        self,
        kind: str,
        old: JSON | None,
        new: JSON | None,
        store: dict[str, Any],
        read: Callable[[JSON], Any],
    ) -> None:
        def apply() -> None:
            if new is None:
                assert old is not None
                store.pop(object_key(old), None)
            else:
                store[object_key(new)] = read(new)

        self._update(kind, apply)

    def _update(self, kind: str, apply: Callable[[], None]) -> None:
        with self.changed:
            apply()
            self.changed.notify_all()
        if kind != DELETED:
            self._on_change()


def _bound_to(volume: VolumeFacts, claim: ClaimFacts) -> VolumeFacts:
    """The volume with its claim reference set as the PV controller's binding sets it."""
    return replace(
        volume,
        claim_ref=ClaimRef(claim.namespace, claim.name, claim.uid),
        bound_by_controller=volume.bound_by_controller or not volume.bound_to(claim),
    )
