"""One pod's volumes, resolved once per decision, and what binding them on a node takes: pure.

``pod_volumes`` is kube-scheduler's PreFilter for VolumeRestrictions, VolumeBinding and
VolumeZone, in that order, so the first reason that rules out every node is the one
kube-scheduler gives, word for word::

    persistentvolumeclaim "data" not found
    waiting for ephemeral volume controller to create the persistentvolumeclaim "web-0-scratch"
    persistentvolumeclaim "data" bound to non-existent persistentvolume "pv-7"
    persistentvolumeclaim "data" is being deleted
    PVC lab/web-0-scratch was not created for pod lab/web-0 (pod is not owner)
    pod has unbound immediate PersistentVolumeClaims
    persistentvolume "pv-7" not found

A claim is *bound* when the PV controller marked it so (``volumeName`` and the
``bind-completed`` annotation). An unbound claim of a ``WaitForFirstConsumer`` class without
a volume name is the scheduler's to bind; any other unbound claim (``Immediate`` class, no
class, a class that does not exist, or pre-bound by name) is the PV controller's, and the pod
waits for it.

``find_pod_volumes`` is VolumeBinding's Filter for one node: bound claims' volumes must accept
the node; each claim to bind gets the smallest matching volume there (claims by increasing
request, a volume never given twice), and claims with no volume (or a ``selected-node``
annotation already) must be provisionable there: a provisioner, the class's allowed
topologies, and CSIStorageCapacity when the CSI driver publishes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from scheduler.plugins.framework import PodContext, PodRejection
from scheduler.podfacts import PodFacts
from scheduler.volumes.matching import (
    Candidates,
    ZoneConstraint,
    find_matching_volume,
    topology_allows,
    volume_fits_node,
    zone_constraints,
)
from scheduler.volumes.objects import (
    CLAIM_LOST,
    IN_TREE_PROVISIONERS,
    READ_WRITE_ONCE_POD,
    CapacityFacts,
    ClaimFacts,
    ClassFacts,
    CSINodeFacts,
    DriverFacts,
    VolumeFacts,
)

BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
NODE_CONFLICT = "node(s) didn't match PersistentVolume's node affinity"
NOT_ENOUGH_SPACE = "node(s) did not have enough free storage"
PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
NO_CANDIDATES = Candidates()
# The rejections' words without the object names: bounded metric labels.
CLAIM_NOT_FOUND = "persistentvolumeclaim not found"
EPHEMERAL_CLAIM_AWAITED = (
    "waiting for ephemeral volume controller to create the persistentvolumeclaim"
)
CLAIM_LOST_VOLUME = "persistentvolumeclaim bound to non-existent persistentvolume"
CLAIM_DELETING = "persistentvolumeclaim is being deleted"
CLAIM_NOT_OWNED = "PVC was not created for pod (pod is not owner)"
VOLUME_NOT_FOUND = "persistentvolume not found"


class VolumeView(Protocol):
    """What the pure code reads of the volume caches. ``claim``/``volume`` are the scheduler's
    view, with in-flight bindings assumed; ``api_claim``/``api_volume`` are the apiserver's as
    last watched (what kube-scheduler's listers return)."""

    def claim(self, namespace: str, name: str) -> ClaimFacts | None: ...
    def api_claim(self, namespace: str, name: str) -> ClaimFacts | None: ...
    def volume(self, name: str) -> VolumeFacts | None: ...
    def api_volume(self, name: str) -> VolumeFacts | None: ...
    def volumes_of_class(self, storage_class: str) -> Sequence[VolumeFacts]: ...
    def storage_class(self, name: str) -> ClassFacts | None: ...
    def csinode(self, name: str) -> CSINodeFacts | None: ...
    def driver(self, name: str) -> DriverFacts | None: ...
    def capacities(self) -> Sequence[CapacityFacts]: ...
    def volume_limits(self, node: str) -> Mapping[str, int]:
        """CSI attach limits of the node, by driver (its CSINode's ``allocatable.count``)."""
        ...

    def attachable_of(self, pod: PodFacts) -> Mapping[str, str]:
        """``attachable_volumes`` of a pod already bound or in flight."""
        ...


@dataclass(frozen=True, slots=True)
class BoundClaim:
    claim: ClaimFacts
    volume: VolumeFacts | None
    """None when the volume the claim is bound to is gone."""


@dataclass(frozen=True, slots=True)
class PodVolumes:
    """A pod's claims, resolved against the caches for one decision."""

    view: VolumeView
    rejection: PodRejection | None = None
    bound: tuple[BoundClaim, ...] = ()
    to_bind: tuple[ClaimFacts, ...] = ()
    """Unbound claims of ``WaitForFirstConsumer`` classes, in the pod's volume order."""
    candidates: Mapping[str, Candidates] = field(default_factory=dict)
    """The volumes of each class of ``to_bind``, as the scheduler sees them now."""
    read_write_once_pod_in_use: bool = False
    zones: tuple[ZoneConstraint, ...] = ()
    attachable: Mapping[str, str] = field(default_factory=dict)
    """The pod's volumes that count against CSI attach limits: unique name → driver."""

    @property
    def all_bound(self) -> bool:
        return not self.to_bind


@dataclass(frozen=True, slots=True)
class VolumePlan:
    """What binding a pod's volumes on ``node`` takes: volumes to bind to claims (the PV
    controller finishes each binding), and claims to provision on the node."""

    node: str
    bindings: tuple[tuple[ClaimFacts, VolumeFacts], ...] = ()
    provisions: tuple[ClaimFacts, ...] = ()
    problem: str = ""
    """Why no plan could be made for the node chosen; the binding then fails with it."""

    @property
    def empty(self) -> bool:
        return not self.bindings and not self.provisions and not self.problem


VOLUMES = "VolumeBinding"
"""Where the pod's resolved claims are kept in ``PodContext.cycle``: VolumeBinding's
prefilter state, which the other volume plugins read too."""


def volumes_of(ctx: PodContext) -> PodVolumes | None:
    state = ctx.cycle.get(VOLUMES)
    return state if isinstance(state, PodVolumes) else None


def not_found(kind: str, name: str) -> str:
    return f'{kind} "{name}" not found'


def pod_volumes(
    pod: PodFacts, view: VolumeView, claims_in_use: Mapping[str, int]
) -> PodVolumes | None:
    """None for a pod without claims. ``claims_in_use`` counts, by ``namespace/claim``, the
    pods (bound or in flight, other than this one) whose volumes name each claim."""
    if not pod.claims:
        return None
    ns = pod.namespace
    claims: list[ClaimFacts] = []
    in_use = False
    for ref in pod.claims:  # VolumeRestrictions
        if ref.ephemeral:
            continue
        claim = view.api_claim(ns, ref.claim)
        if claim is None:
            return _rejected(view, not_found("persistentvolumeclaim", ref.claim), CLAIM_NOT_FOUND)
        if READ_WRITE_ONCE_POD in claim.access_modes and claims_in_use.get(claim.key, 0) > 0:
            in_use = True
    for ref in pod.claims:  # VolumeBinding
        claim = view.claim(ns, ref.claim)
        if claim is None:
            if ref.ephemeral:
                return _rejected(
                    view, f'{EPHEMERAL_CLAIM_AWAITED} "{ref.claim}"', EPHEMERAL_CLAIM_AWAITED
                )
            return _rejected(view, not_found("persistentvolumeclaim", ref.claim), CLAIM_NOT_FOUND)
        if claim.phase == CLAIM_LOST:
            return _rejected(
                view,
                f'persistentvolumeclaim "{claim.name}" bound to non-existent '
                f'persistentvolume "{claim.volume_name}"',
                CLAIM_LOST_VOLUME,
            )
        if claim.deleting:
            reason = f'persistentvolumeclaim "{claim.name}" is being deleted'
            return _rejected(view, reason, CLAIM_DELETING)
        if ref.ephemeral and claim.controller_uid != pod.uid:
            reason = (
                f"PVC {ns}/{claim.name} was not created for pod {ns}/{pod.name} (pod is not owner)"
            )
            return _rejected(view, reason, CLAIM_NOT_OWNED)
        claims.append(claim)
    bound: list[BoundClaim] = []
    to_bind: list[ClaimFacts] = []
    for claim in claims:
        if claim.fully_bound:
            bound.append(BoundClaim(claim, view.volume(claim.volume_name)))
            continue
        storage_class = view.storage_class(claim.storage_class) if claim.storage_class else None
        if storage_class is None or not storage_class.wait_for_first_consumer or claim.volume_name:
            return _rejected(view, UNBOUND_IMMEDIATE, UNBOUND_IMMEDIATE)
        if storage_class.provisioner in IN_TREE_PROVISIONERS:
            return _unsupported(
                view,
                f"storage class {storage_class.name} uses the in-tree provisioner "
                f"{storage_class.provisioner} (CSI migration is not evaluated)",
            )
        to_bind.append(claim)
    zones: list[ZoneConstraint] = []
    for ref in pod.claims:  # VolumeZone: claims named in the pod spec, bound to a volume
        claim = view.api_claim(ns, ref.claim)
        if ref.ephemeral or claim is None or not claim.volume_name:
            continue
        volume = view.api_volume(claim.volume_name)
        if volume is None:
            return _rejected(
                view, not_found("persistentvolume", claim.volume_name), VOLUME_NOT_FOUND
            )
        zones.extend(zone_constraints(volume))
    for each in bound:
        if each.volume is not None and each.volume.in_tree_kind:
            return _unsupported(
                view,
                f"persistent volume {each.volume.name} uses the in-tree "
                f"{each.volume.in_tree_kind} plugin (CSI migration is not evaluated)",
            )
    return PodVolumes(
        view=view,
        bound=tuple(bound),
        to_bind=tuple(to_bind),
        candidates={
            c.storage_class: Candidates.of(view.volumes_of_class(c.storage_class)) for c in to_bind
        },
        read_write_once_pod_in_use=in_use,
        zones=tuple(zones),
        attachable=attachable_volumes(pod, view),
    )


def _rejected(view: VolumeView, reason: str, label: str) -> PodVolumes:
    return PodVolumes(view=view, rejection=PodRejection(reason, label=label))


def _unsupported(view: VolumeView, reason: str) -> PodVolumes:
    return PodVolumes(view=view, rejection=PodRejection(reason, unsupported=True))


def attachable_volumes(pod: PodFacts, view: VolumeView) -> dict[str, str]:
    """NodeVolumeLimits' count of a pod: its claims' CSI volumes, as ``driver/handle`` → driver.

    Read from the apiserver's objects, as kube-scheduler's listers do: a claim not bound yet
    counts under its class's provisioner with a handle made of its own name, so the same
    claim in two pods still counts once. Claims without a CSI driver count for nothing."""
    found: dict[str, str] = {}
    for ref in pod.claims:
        claim = view.api_claim(pod.namespace, ref.claim)
        if claim is None or (ref.ephemeral and claim.controller_uid != pod.uid):
            continue
        driver, handle = _csi_of(claim, view)
        if driver and handle:
            found[f"{driver}/{handle}"] = driver
    return found


def _csi_of(claim: ClaimFacts, view: VolumeView) -> tuple[str, str]:
    volume = view.api_volume(claim.volume_name) if claim.volume_name else None
    if volume is not None:
        return volume.csi_driver, volume.csi_handle
    storage_class = view.storage_class(claim.storage_class) if claim.storage_class else None
    if storage_class is None or storage_class.provisioner in IN_TREE_PROVISIONERS:
        return "", ""
    # NUL cannot appear in a real volume handle: no collision with a bound volume.
    return storage_class.provisioner, f"\0{claim.namespace}/{claim.name}"


def find_pod_volumes(
    volumes: PodVolumes, node: str, labels: Mapping[str, str]
) -> tuple[VolumePlan, tuple[str, ...]]:
    """The plan for ``node``, or the reasons it cannot take the pod's volumes."""
    node_conflict = pv_missing = bind_conflict = short_of_space = False
    for each in volumes.bound:
        if each.volume is None:
            pv_missing = True
            break
        if not volume_fits_node(each.volume, labels):
            node_conflict = True
            break
    bindings: list[tuple[ClaimFacts, VolumeFacts]] = []
    provisions: list[ClaimFacts] = []
    to_provision: list[ClaimFacts] = []
    to_match: list[ClaimFacts] = []
    for claim in volumes.to_bind:
        if claim.selected_node is None:
            to_match.append(claim)
        elif claim.selected_node == node:
            to_provision.append(claim)
        else:  # being provisioned for another node
            bind_conflict = True
            break
    if not bind_conflict:
        chosen: set[str] = set()
        to_match.sort(key=lambda claim: claim.request or 0)  # smallest claims first
        for claim in to_match:
            candidates = volumes.candidates.get(claim.storage_class, NO_CANDIDATES)
            volume = find_matching_volume(claim, candidates.for_node(labels), labels, chosen)
            if volume is None:
                to_provision.append(claim)
                bind_conflict = True
                continue
            chosen.add(volume.name)
            bindings.append((claim, volume))
        if to_provision:
            bind_conflict, short_of_space, provisions = _provisionable(
                volumes.view, to_provision, labels
            )
    reasons = []
    if node_conflict:
        reasons.append(NODE_CONFLICT)
    if bind_conflict:
        reasons.append(BIND_CONFLICT)
    if short_of_space:
        reasons.append(NOT_ENOUGH_SPACE)
    if pv_missing:
        reasons.append(PV_NOT_EXIST)
    return VolumePlan(node, tuple(bindings), tuple(provisions)), tuple(reasons)


def _provisionable(
    view: VolumeView, claims: list[ClaimFacts], labels: Mapping[str, str]
) -> tuple[bool, bool, list[ClaimFacts]]:
    """(bind conflict, short of space, claims to provision), as kube-scheduler decides it:
    the first claim that cannot be provisioned here settles it."""
    provisions = []
    for claim in claims:
        storage_class = view.storage_class(claim.storage_class)
        if storage_class is None or not storage_class.provisions:
            return True, False, []
        if not topology_allows(storage_class, labels):
            return True, False, []
        if not _has_capacity(view, storage_class, claim, labels):
            return False, True, []
        provisions.append(claim)
    return False, False, provisions


def _has_capacity(
    view: VolumeView, storage_class: ClassFacts, claim: ClaimFacts, labels: Mapping[str, str]
) -> bool:
    driver = view.driver(storage_class.provisioner)
    if driver is None or not driver.storage_capacity or claim.request_bytes == 0:
        return True
    return any(
        capacity.storage_class == storage_class.name
        and capacity.limit is not None
        and capacity.limit >= claim.request_bytes
        and capacity.node_topology is not None
        and capacity.node_topology.matches(labels)
        for capacity in view.capacities()
    )
