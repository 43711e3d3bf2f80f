"""What a scheduling decision needs from a pod, read once from its JSON.

Reading never raises: a bad bandwidth annotation or resource quantity is kept as
``invalid`` so the scheduler can explain it on the pod instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bandwidth.budget import AxisVector
from bandwidth.request import (
    NO_REQUEST,
    BandwidthRequest,
    InvalidBandwidthAnnotation,
    RequestPolicy,
    request_from_annotations,
)
from kubeio.objects import TERMINAL_PHASES, controller_reference
from scheduler.resources import ResourceVector, pod_requests


@dataclass(frozen=True, slots=True)
class WorkloadKey:
    """The workload a pod belongs to; pods sharing one are siblings."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


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
    owner_kind: str = ""
    owner_name: str = ""
    template_hash: str = ""
    unsupported: tuple[str, ...] = ()
    gated: bool = False
    deleting: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def bound(self) -> bool:
        return bool(self.node_name)


def _unsupported_constraints(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """Hard constraints this scheduler does not evaluate: reported, never silently ignored."""
    found = []
    affinity = spec.get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        if (affinity.get(kind) or {}).get("requiredDuringSchedulingIgnoredDuringExecution"):
            found.append(f"required {kind}")
    for constraint in spec.get("topologySpreadConstraints") or []:
        if constraint.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule":
            found.append("topologySpreadConstraints with DoNotSchedule")
            break
    for volume in spec.get("volumes") or []:
        if "persistentVolumeClaim" in volume or "ephemeral" in volume:
            found.append("persistent volume claims (volume binding)")
            break
    for container in spec.get("containers") or []:
        if any(port.get("hostPort") for port in container.get("ports") or []):
            found.append("host ports")
            break
    return tuple(found)


def read_pod(pod: Mapping[str, Any], policy: RequestPolicy) -> PodFacts:
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    invalid = ""
    try:
        bandwidth = request_from_annotations(metadata.get("annotations"), policy)
    except InvalidBandwidthAnnotation as error:
        bandwidth, invalid = NO_REQUEST, str(error)
    try:
        requests = pod_requests(spec)
    except (ValueError, ArithmeticError) as error:
        requests, invalid = {"pods": 1}, invalid or f"invalid resource request: {error}"
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    owner = controller_reference(metadata)
    return PodFacts(
        uid=str(metadata.get("uid", "")),
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        node_name=str(spec.get("nodeName") or ""),
        phase=str(status.get("phase") or "Pending"),
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
        owner_kind=str(owner.get("kind", "")),
        owner_name=str(owner.get("name", "")),
        template_hash=str((metadata.get("labels") or {}).get("pod-template-hash", "")),
        unsupported=_unsupported_constraints(spec),
        gated=bool(spec.get("schedulingGates")),
        deleting=bool(metadata.get("deletionTimestamp")),
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
