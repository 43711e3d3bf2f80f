"""PersistentVolumeClaims, PersistentVolumes, StorageClasses, CSINodes, CSIDrivers and
CSIStorageCapacities as the scheduler reads them: once per watch event, into frozen values.

Reading never raises. A quantity the apiserver let through but that does not parse reads as
``None`` (a claim asking ``None`` bytes matches no volume; a volume of ``None`` bytes holds no
claim), so bad input makes a pod wait, it never widens a match. Field meanings and defaults
are kube-scheduler's (v1.37): the class of a claim or volume is the beta annotation if set,
else ``spec.storageClassName``; a missing ``volumeMode`` is ``Filesystem``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from kubeio.labels import LabelSelector, Requirement
from kubeio.objects import controller_reference

BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
MIGRATED_PLUGINS = "storage.alpha.kubernetes.io/migrated-plugins"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
FILESYSTEM = "Filesystem"
READ_WRITE_ONCE_POD = "ReadWriteOncePod"
CLAIM_LOST = "Lost"
VOLUME_AVAILABLE = "Available"

IN_TREE_MIGRATABLE: Mapping[str, str] = {
    "awsElasticBlockStore": "kubernetes.io/aws-ebs",
    "gcePersistentDisk": "kubernetes.io/gce-pd",
    "azureDisk": "kubernetes.io/azure-disk",
    "azureFile": "kubernetes.io/azure-file",
    "cinder": "kubernetes.io/cinder",
    "vsphereVolume": "kubernetes.io/vsphere-volume",
    "portworxVolume": "kubernetes.io/portworx-volume",
}
"""Volume sources kube-scheduler translates to CSI when a node's CSINode says the plugin was
migrated (their topology and attach limits then change); this scheduler does not translate."""

IN_TREE_PROVISIONERS = frozenset(IN_TREE_MIGRATABLE.values())


def _quantity(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(parse_quantity(str(value)))
    except (ValueError, ArithmeticError):
        return None


def _resource_version(metadata: Mapping[str, Any]) -> int:
    """etcd's revision: comparable, as kube-scheduler's assume cache compares them."""
    try:
        return int(metadata.get("resourceVersion") or 0)
    except ValueError:
        return 0


def _class_of(metadata: Mapping[str, Any], spec_class: Any) -> str:
    annotations = metadata.get("annotations") or {}
    if BETA_STORAGE_CLASS in annotations:
        return str(annotations[BETA_STORAGE_CLASS])
    return str(spec_class or "")


_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}


def read_label_selector(spec: Any) -> LabelSelector | None:
    """A ``metav1.LabelSelector``; ``None`` when absent. An unknown operator (the apiserver
    refuses those) reads as a selector matching nothing: a requirement no label meets."""
    if not isinstance(spec, Mapping):
        return None
    requirements = [
        Requirement(str(key), "in", frozenset({str(value)}))
        for key, value in (spec.get("matchLabels") or {}).items()
    ]
    for expression in spec.get("matchExpressions") or []:
        operator = _OPERATORS.get(str(expression.get("operator")))
        values = frozenset(str(value) for value in expression.get("values") or ())
        if operator is None:
            requirements.append(Requirement("", "in", frozenset()))
            continue
        requirements.append(Requirement(str(expression.get("key", "")), operator, values))
    return LabelSelector(tuple(requirements))


@dataclass(frozen=True, slots=True)
class ClaimRef:
    namespace: str
    name: str
    uid: str = ""


@dataclass(frozen=True, slots=True)
class ClaimFacts:
    """A PersistentVolumeClaim."""

    namespace: str
    name: str
    uid: str
    resource_version: int
    storage_class: str
    volume_name: str
    bind_completed: bool
    selected_node: str | None
    """The ``volume.kubernetes.io/selected-node`` annotation; None when absent."""
    access_modes: frozenset[str]
    volume_mode: str
    request: Decimal | None
    selector: LabelSelector | None
    attributes_class: str
    phase: str
    deleting: bool
    controller_uid: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def fully_bound(self) -> bool:
        """Bound by the PV controller: a volume named and the binding marked complete."""
        return bool(self.volume_name) and self.bind_completed

    @property
    def request_bytes(self) -> int:
        return math.ceil(self.request) if self.request is not None else 0


def read_claim(obj: Mapping[str, Any]) -> ClaimFacts:
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    annotations = metadata.get("annotations") or {}
    requests = (spec.get("resources") or {}).get("requests") or {}
    storage = requests.get("storage")
    return ClaimFacts(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        resource_version=_resource_version(metadata),
        storage_class=_class_of(metadata, spec.get("storageClassName")),
        volume_name=str(spec.get("volumeName") or ""),
        bind_completed=BIND_COMPLETED in annotations,
        selected_node=str(annotations[SELECTED_NODE]) if SELECTED_NODE in annotations else None,
        access_modes=frozenset(str(mode) for mode in spec.get("accessModes") or ()),
        volume_mode=str(spec.get("volumeMode") or FILESYSTEM),
        request=_quantity(storage) if storage is not None else Decimal(0),
        selector=read_label_selector(spec.get("selector")),
        attributes_class=str(spec.get("volumeAttributesClassName") or ""),
        phase=str((obj.get("status") or {}).get("phase") or ""),
        deleting=bool(metadata.get("deletionTimestamp")),
        controller_uid=str(controller_reference(metadata).get("uid", "")),
    )


@dataclass(frozen=True, slots=True)
class VolumeFacts:
    """A PersistentVolume."""

    name: str
    resource_version: int
    storage_class: str
    capacity: Decimal | None
    access_modes: frozenset[str]
    volume_mode: str
    attributes_class: str
    labels: Mapping[str, str]
    claim_ref: ClaimRef | None
    phase: str
    deleting: bool
    node_terms: tuple[Mapping[str, Any], ...] | None
    """``spec.nodeAffinity.required.nodeSelectorTerms``; None when the volume has no
    required node affinity (every node may use it)."""
    csi_driver: str = ""
    csi_handle: str = ""
    in_tree_kind: str = ""
    """The in-tree source (``gcePersistentDisk`` ...) kube-scheduler could translate to CSI."""
    bound_by_controller: bool = False

    def bound_to(self, claim: ClaimFacts) -> bool:
        """Pre-bound or bound to this claim: same name and namespace, and the same UID when
        the reference names one."""
        ref = self.claim_ref
        if ref is None or ref.name != claim.name or ref.namespace != claim.namespace:
            return False
        return not ref.uid or ref.uid == claim.uid


def read_volume(obj: Mapping[str, Any]) -> VolumeFacts:
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    ref = spec.get("claimRef")
    claim_ref = None
    if isinstance(ref, Mapping):
        claim_ref = ClaimRef(
            str(ref.get("namespace", "")), str(ref.get("name", "")), str(ref.get("uid", ""))
        )
    required = (spec.get("nodeAffinity") or {}).get("required")
    node_terms = None
    if isinstance(required, Mapping):
        node_terms = tuple(required.get("nodeSelectorTerms") or ())
    csi = spec.get("csi") or {}
    return VolumeFacts(
        name=str(metadata.get("name", "")),
        resource_version=_resource_version(metadata),
        storage_class=_class_of(metadata, spec.get("storageClassName")),
        capacity=_quantity((spec.get("capacity") or {}).get("storage", "0")),
        access_modes=frozenset(str(mode) for mode in spec.get("accessModes") or ()),
        volume_mode=str(spec.get("volumeMode") or FILESYSTEM),
        attributes_class=str(spec.get("volumeAttributesClassName") or ""),
        labels={str(k): str(v) for k, v in (metadata.get("labels") or {}).items()},
        claim_ref=claim_ref,
        phase=str((obj.get("status") or {}).get("phase") or ""),
        deleting=bool(metadata.get("deletionTimestamp")),
        node_terms=node_terms,
        csi_driver=str(csi.get("driver") or ""),
        csi_handle=str(csi.get("volumeHandle") or ""),
        in_tree_kind=next((kind for kind in IN_TREE_MIGRATABLE if spec.get(kind)), ""),
        bound_by_controller=BOUND_BY_CONTROLLER in (metadata.get("annotations") or {}),
    )


@dataclass(frozen=True, slots=True)
class ClassFacts:
    """A StorageClass."""

    name: str
    provisioner: str
    binding_mode: str
    allowed_topologies: tuple[tuple[tuple[str, frozenset[str]], ...], ...]
    """Terms (ORed) of label requirements (ANDed): the key's value must be one of the values."""
    default: bool = False
    """Marked the default class: the apiserver gives it to claims that name none."""

    @property
    def wait_for_first_consumer(self) -> bool:
        return self.binding_mode == WAIT_FOR_FIRST_CONSUMER

    @property
    def provisions(self) -> bool:
        return bool(self.provisioner) and self.provisioner != NO_PROVISIONER


def read_class(obj: Mapping[str, Any]) -> ClassFacts:
    terms = []
    for term in obj.get("allowedTopologies") or []:
        terms.append(
            tuple(
                (str(e.get("key", "")), frozenset(str(v) for v in e.get("values") or ()))
                for e in term.get("matchLabelExpressions") or []
            )
        )
    metadata = obj.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    return ClassFacts(
        name=str(metadata.get("name", "")),
        provisioner=str(obj.get("provisioner") or ""),
        binding_mode=str(obj.get("volumeBindingMode") or "Immediate"),
        allowed_topologies=tuple(terms),
        default=any(annotations.get(key) == "true" for key in DEFAULT_CLASS_ANNOTATIONS),
    )


@dataclass(frozen=True, slots=True)
class CSINodeFacts:
    """A CSINode: how many volumes of each driver the node takes, and which in-tree plugins
    its kubelet migrated to CSI."""

    name: str
    limits: Mapping[str, int]
    migrated: frozenset[str]


def read_csinode(obj: Mapping[str, Any]) -> CSINodeFacts:
    metadata = obj.get("metadata") or {}
    limits = {}
    for driver in (obj.get("spec") or {}).get("drivers") or []:
        count = (driver.get("allocatable") or {}).get("count")
        if isinstance(count, int) and not isinstance(count, bool):
            limits[str(driver.get("name", ""))] = count
    migrated = str((metadata.get("annotations") or {}).get(MIGRATED_PLUGINS) or "")
    return CSINodeFacts(
        name=str(metadata.get("name", "")),
        limits=limits,
        migrated=frozenset(p for p in migrated.split(",") if p),
    )


@dataclass(frozen=True, slots=True)
class DriverFacts:
    """A CSIDriver, for what scheduling reads of it: whether it publishes capacity."""

    name: str
    storage_capacity: bool


def read_driver(obj: Mapping[str, Any]) -> DriverFacts:
    return DriverFacts(
        name=str((obj.get("metadata") or {}).get("name", "")),
        storage_capacity=bool((obj.get("spec") or {}).get("storageCapacity")),
    )


@dataclass(frozen=True, slots=True)
class CapacityFacts:
    """A CSIStorageCapacity: room for new volumes of a class on the nodes it selects."""

    key: str
    storage_class: str
    node_topology: LabelSelector | None
    limit: int | None
    """``maximumVolumeSize`` if given (more precise), else ``capacity``; in bytes."""


def read_capacity(obj: Mapping[str, Any]) -> CapacityFacts:
    metadata = obj.get("metadata") or {}
    limit = _quantity(obj.get("maximumVolumeSize"))
    if limit is None:
        limit = _quantity(obj.get("capacity"))
    return CapacityFacts(
        key=f"{metadata.get('namespace', '')}/{metadata.get('name', '')}",
        storage_class=str(obj.get("storageClassName") or ""),
        node_topology=read_label_selector(obj.get("nodeTopology")),
        limit=math.ceil(limit) if limit is not None else None,
    )
