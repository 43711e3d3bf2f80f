"""What a scheduling decision needs from a pod, read once from its JSON.

Identity, placement, phase, owner and bandwidth request are read by ``kubeio.pods``, the one
reader both daemons share; the rest here. Reading never raises: a bad bandwidth annotation or
resource quantity is kept as ``invalid`` so the scheduler can explain it on the pod instead of
guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bandwidth.budget import AxisVector
from bandwidth.request import BandwidthRequest, RequestPolicy
from kubeio.fencing import RELEASED_ANNOTATION
from kubeio.objects import TERMINAL_PHASES
from kubeio.pods import read_pod_basics
from scheduler.podterms import (
    NO_TERMS,
    HostPort,
    PodTerms,
    SpreadConstraint,
    read_host_ports,
    read_spread_constraints,
    read_terms,
)
from scheduler.resources import ResourceVector, pod_requests

PREEMPT_LOWER_PRIORITY = "PreemptLowerPriority"
PREEMPT_NEVER = "Never"
DISRUPTION_TARGET = "DisruptionTarget"
PREEMPTION_BY_SCHEDULER = "PreemptionByScheduler"


@dataclass(frozen=True, slots=True)
class WorkloadKey:
    """The workload a pod belongs to; pods sharing one are siblings."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class PodClaim:
    """A PersistentVolumeClaim a pod's volume names: ``persistentVolumeClaim.claimName``, or
    ``<pod>-<volume>`` for a generic ephemeral volume (the claim its controller creates)."""

    volume: str
    claim: str
    ephemeral: bool = False


@dataclass(frozen=True, slots=True)
class PodFacts:
    uid: str
    namespace: str
    name: str
    node_name: str
    phase: str
    scheduler_name: str
    priority: int
    created: str
    requests: ResourceVector
    bandwidth: BandwidthRequest
    charge: AxisVector = (0, 0, 0, 0)
    """``bandwidth.charge()`` per axis, computed once for the filter's hot loop."""
    invalid: str = ""
    node_selector: Mapping[str, str] = field(default_factory=dict)
    required_node_terms: tuple[Mapping[str, Any], ...] = ()
    preferred_node_terms: tuple[Mapping[str, Any], ...] = ()
    tolerations: tuple[Mapping[str, Any], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    terms: PodTerms = NO_TERMS
    """Inter-pod affinity and anti-affinity, required and preferred."""
    spread: tuple[SpreadConstraint, ...] = ()
    host_ports: tuple[HostPort, ...] = ()
    owner_kind: str = ""
    owner_name: str = ""
    template_hash: str = ""
    unsupported: tuple[str, ...] = ()
    claims: tuple[PodClaim, ...] = ()
    gated: bool = False
    deleting: bool = False
    preemption_policy: str = PREEMPT_LOWER_PRIORITY
    """``spec.preemptionPolicy``: ``Never`` pods wait for room and never preempt."""
    nominated_node: str = ""
    """``status.nominatedNodeName``: where a preemption made room for the pod."""
    started: str = ""
    """``status.startTime``, set by the kubelet; preemption spares the longest-running first."""
    preempted: bool = False
    """The pod carries ``DisruptionTarget`` for ``PreemptionByScheduler``: a scheduler
    preempted it (it is terminating, or about to be)."""
    resource_version: str = field(default="", compare=False)
    """The version read: bindings carry it as a precondition (``kubeio.fencing``)."""
    released_reservation: str = ""
    """The fence token of a reservation released while the pod was unbound, if any."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def bound(self) -> bool:
        return bool(self.node_name)

    @property
    def may_preempt(self) -> bool:
        return self.preemption_policy != PREEMPT_NEVER

    @property
    def counts_placed_pods(self) -> bool:
        """Whether a pod being placed or relabelled may make room for this one: its required
        pod affinity may find its match, its anti-affinity may stop matching, the minimum of
        its hard spread may rise."""
        terms = self.terms
        return bool(
            terms.required_affinity
            or terms.required_anti_affinity
            or any(constraint.hard for constraint in self.spread)
        )


def _unsupported_constraints(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """Hard constraints this scheduler does not evaluate: reported, never silently ignored."""
    found = []
    for volume in spec.get("volumes") or []:
        in_tree = next((name for name in IN_TREE_VOLUMES if volume.get(name)), None)
        if in_tree is not None:
            found.append(f"in-tree {in_tree} volumes")
            break
    if spec.get("resourceClaims"):
        # Only kube-scheduler allocates claims; a pod bound with unallocated ones never starts.
        found.append("resource claims (DRA allocation)")
    return tuple(found)


IN_TREE_VOLUMES = (
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "rbd",
    "iscsi",
    "azureDisk",
    "azureFile",
    "cinder",
    "vsphereVolume",
    "portworxVolume",
)
"""Inline volume kinds kube-scheduler checks for disk conflicts (VolumeRestrictions) or counts
against attach limits once migrated to CSI (NodeVolumeLimits); this scheduler does neither."""


def _claims(spec: Mapping[str, Any], pod_name: str) -> tuple[PodClaim, ...]:
    claims = []
    for volume in spec.get("volumes") or []:
        name = str(volume.get("name", ""))
        source = volume.get("persistentVolumeClaim")
        if isinstance(source, Mapping):
            claims.append(PodClaim(name, str(source.get("claimName", ""))))
        elif volume.get("ephemeral"):
            claims.append(PodClaim(name, f"{pod_name}-{name}", ephemeral=True))
    return tuple(claims)


def read_pod(pod: Mapping[str, Any], policy: RequestPolicy) -> PodFacts:
    """The pod's facts: identity, placement, owner and bandwidth as ``kubeio.pods`` reads them
    for both daemons, and what a decision needs besides."""
    basics = read_pod_basics(pod, policy)
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    bandwidth = basics.bandwidth
    invalid = str(basics.invalid) if basics.invalid is not None else ""
    try:
        requests = pod_requests(spec)
    except (ValueError, ArithmeticError) as error:
        requests, invalid = {"pods": 1}, invalid or f"invalid resource request: {error}"
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    owner = basics.owner
    namespace = basics.namespace
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    return PodFacts(
        uid=basics.uid,
        namespace=namespace,
        name=basics.name,
        node_name=basics.node_name,
        phase=basics.phase,
        scheduler_name=str(spec.get("schedulerName") or "default-scheduler"),
        priority=int(spec.get("priority") or 0),
        created=str(metadata.get("creationTimestamp") or ""),
        requests=requests,
        bandwidth=bandwidth,
        charge=bandwidth.charge().as_tuple(),
        invalid=invalid,
        node_selector=dict(spec.get("nodeSelector") or {}),
        required_node_terms=tuple(required.get("nodeSelectorTerms") or ()),
        preferred_node_terms=tuple(
            node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
        ),
        tolerations=tuple(spec.get("tolerations") or ()),
        labels=labels,
        terms=read_terms(spec, namespace, labels),
        spread=read_spread_constraints(spec, labels),
        host_ports=read_host_ports(spec),
        owner_kind=owner.kind if owner is not None else "",
        owner_name=owner.name if owner is not None else "",
        template_hash=labels.get("pod-template-hash", ""),
        unsupported=_unsupported_constraints(spec),
        claims=_claims(spec, str(metadata.get("name", ""))),
        gated=bool(spec.get("schedulingGates")),
        deleting=bool(metadata.get("deletionTimestamp")),
        preemption_policy=str(spec.get("preemptionPolicy") or PREEMPT_LOWER_PRIORITY),
        nominated_node=str(status.get("nominatedNodeName") or ""),
        started=str(status.get("startTime") or ""),
        preempted=_preempted(status),
        resource_version=str(metadata.get("resourceVersion", "")),
        released_reservation=str((metadata.get("annotations") or {}).get(RELEASED_ANNOTATION, "")),
    )


def _preempted(status: Mapping[str, Any]) -> bool:
    return any(
        condition.get("type") == DISRUPTION_TARGET
        and condition.get("status") == "True"
        and condition.get("reason") == PREEMPTION_BY_SCHEDULER
        for condition in status.get("conditions") or ()
    )


def workload_of(facts: PodFacts, deployment_of_replicaset: Mapping[str, str]) -> WorkloadKey | None:
    """The sibling group: StatefulSet, Deployment (through its ReplicaSet), ReplicaSet or Job.

    ``deployment_of_replicaset`` maps ``namespace/replicaset`` to its Deployment's name; when
    the ReplicaSet is not cached yet, the Deployment controller's naming rule
    (``<deployment>-<pod-template-hash>``) resolves it.
    """
    if not facts.owner_kind:
        return None
    if facts.owner_kind == "ReplicaSet":
        deployment = deployment_of_replicaset.get(f"{facts.namespace}/{facts.owner_name}")
        suffix = f"-{facts.template_hash}"
        if deployment is None and facts.template_hash and facts.owner_name.endswith(suffix):
            deployment = facts.owner_name[: -len(suffix)]
        if deployment:
            return WorkloadKey("Deployment", facts.namespace, deployment)
    return WorkloadKey(facts.owner_kind, facts.namespace, facts.owner_name)
