"""Storage objects for volume tests, named for the test and removed after it.

``Storage`` creates StorageClasses, PersistentVolumes, claims, CSINodes, CSIDrivers and
CSIStorageCapacities, and removes the cluster-scoped ones (finalizers lifted: without the
controller-manager nothing else would). ``Storage.provisioner`` makes the test an external
provisioner: for each claim of its class that carries ``volume.kubernetes.io/selected-node``,
a CSI volume on that node.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from typing import Any

from kubeio.errors import ApiError, Conflict, NotFound
from kubeio.resources import (
    CSIDRIVERS,
    CSINODES,
    CSISTORAGECAPACITIES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    STORAGECLASSES,
    Resource,
)
from kubeio.rest import KubeApi

JSON = dict[str, Any]
HOSTNAME = "kubernetes.io/hostname"
SELECTED_NODE = "volume.kubernetes.io/selected-node"


def on_node(node: str) -> JSON:
    return {
        "required": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": HOSTNAME, "operator": "In", "values": [node]}]}
            ]
        }
    }


class Storage:
    def __init__(self, kube: KubeApi, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.suffix = uuid.uuid4().hex[:6]
        self._cluster_scoped: list[tuple[Resource, str]] = []
        self._provisioners: list[Provisioner] = []

    def _create(self, resource: Resource, body: JSON) -> JSON:
        if resource.namespaced:
            return self.kube.create(resource.path(namespace=self.namespace), body)
        created = self.kube.create(resource.path(), body)
        self._cluster_scoped.append((resource, created["metadata"]["name"]))
        return created

    def storage_class(
        self,
        name: str = "local",
        *,
        provisioner: str = "kubernetes.io/no-provisioner",
        mode: str = "WaitForFirstConsumer",
        topologies: list[JSON] | None = None,
    ) -> str:
        """Creates the class ``<name>-<suffix>``; returns its name."""
        body: JSON = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": f"{name}-{self.suffix}"},
            "provisioner": provisioner,
            "volumeBindingMode": mode,
        }
        if topologies is not None:
            body["allowedTopologies"] = topologies
        return str(self._create(STORAGECLASSES, body)["metadata"]["name"])

    def volume(
        self,
        name: str,
        storage_class: str,
        *,
        size: str = "10Gi",
        node: str | None = None,
        modes: tuple[str, ...] = ("ReadWriteOnce",),
        csi: tuple[str, str] | None = None,
        labels: dict[str, str] | None = None,
        claim: JSON | None = None,
        affinity: JSON | None = None,
    ) -> str:
        """A local volume on ``node`` (or a CSI one); ``affinity`` replaces the node's."""
        spec: JSON = {
            "capacity": {"storage": size},
            "accessModes": list(modes),
            "storageClassName": storage_class,
            "persistentVolumeReclaimPolicy": "Retain",
        }
        if csi is not None:
            spec["csi"] = {"driver": csi[0], "volumeHandle": csi[1]}
        else:
            spec["local"] = {"path": f"/mnt/disks/{name}"}
        if affinity is not None:
            spec["nodeAffinity"] = affinity
        elif node is not None:
            spec["nodeAffinity"] = on_node(node)
        elif csi is None:  # a local volume must name its node
            raise ValueError("a local volume needs a node")
        if claim is not None:
            spec["claimRef"] = claim
        body = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"{name}-{self.suffix}", "labels": labels or {}},
            "spec": spec,
        }
        return str(self._create(PERSISTENTVOLUMES, body)["metadata"]["name"])

    def claim(
        self,
        name: str,
        storage_class: str,
        *,
        size: str = "1Gi",
        modes: tuple[str, ...] = ("ReadWriteOnce",),
        volume: str | None = None,
    ) -> JSON:
        return self.create_claim(self.claim_body(name, storage_class, size, modes, volume))

    def create_claim(self, body: JSON) -> JSON:
        return self._create(PERSISTENTVOLUMECLAIMS, body)

    @staticmethod
    def claim_body(
        name: str,
        storage_class: str,
        size: str = "1Gi",
        modes: tuple[str, ...] = ("ReadWriteOnce",),
        volume: str | None = None,
    ) -> JSON:
        spec: JSON = {
            "accessModes": list(modes),
            "resources": {"requests": {"storage": size}},
            "storageClassName": storage_class,
        }
        if volume is not None:
            spec["volumeName"] = volume
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": spec,
        }

    def csinode(self, node: str, limits: dict[str, int]) -> None:
        drivers = [
            {"name": driver, "nodeID": node, "allocatable": {"count": count}}
            for driver, count in limits.items()
        ]
        body = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "CSINode",
            "metadata": {"name": node},
            "spec": {"drivers": drivers},
        }
        self._create(CSINODES, body)

    def csidriver(self, name: str, *, storage_capacity: bool) -> None:
        body = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "CSIDriver",
            "metadata": {"name": name},
            "spec": {"attachRequired": False, "storageCapacity": storage_capacity},
        }
        self._create(CSIDRIVERS, body)

    def capacity(self, name: str, storage_class: str, node: str, size: str) -> None:
        """A CSIStorageCapacity: room for ``size`` in ``storage_class`` on ``node``."""
        body = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "CSIStorageCapacity",
            "metadata": {"name": name},
            "storageClassName": storage_class,
            "nodeTopology": {"matchLabels": {HOSTNAME: node}},
            "capacity": size,
        }
        self._create(CSISTORAGECAPACITIES, body)

    def get_claim(self, name: str) -> JSON:
        return self.kube.get(PERSISTENTVOLUMECLAIMS.path(namespace=self.namespace, name=name))

    def get_volume(self, name: str) -> JSON:
        return self.kube.get(PERSISTENTVOLUMES.path(name=name))

    def provisioner(self, storage_class: str, driver: str, refuse: int = 0) -> Provisioner:
        """An external provisioner for the class, stopped with the rest; call ``start``."""
        self._provisioners.append(Provisioner(self, storage_class, driver, refuse))
        return self._provisioners[-1]

    def cleanup(self) -> None:
        for provisioner in self._provisioners:
            provisioner.stop()
        for resource, name in reversed(self._cluster_scoped):
            path = resource.path(name=name)
            with contextlib.suppress(NotFound):
                self.kube.patch(path, {"metadata": {"finalizers": None}})
            with contextlib.suppress(NotFound):
                self.kube.delete(path)


class Provisioner:
    """Provisions, for claims of ``storage_class`` in the namespace, a CSI volume on the node
    the scheduler selected, as an external provisioner would; off until ``start``. The first
    ``refuse`` requests are refused as a provisioner out of room refuses them: the
    selected-node annotation removed, to ask the scheduler for another try."""

    def __init__(self, storage: Storage, storage_class: str, driver: str, refuse: int = 0) -> None:
        self.storage = storage
        self.storage_class = storage_class
        self.driver = driver
        self.refuse = refuse
        self.refused: list[str] = []
        self.provisioned: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-provisioner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(ApiError):  # the apiserver busy: next round
                self._provision_pending()
            self._stop.wait(0.3)

    def _provision_pending(self) -> None:
        storage = self.storage
        claims, _ = storage.kube.list(PERSISTENTVOLUMECLAIMS.path(namespace=storage.namespace))
        for claim in claims:
            metadata = claim["metadata"]
            node = (metadata.get("annotations") or {}).get(SELECTED_NODE)
            spec = claim["spec"]
            if (
                not node
                or spec.get("storageClassName") != self.storage_class
                or spec.get("volumeName")
                or metadata["name"] in self.provisioned
            ):
                continue
            if len(self.refused) < self.refuse:
                path = PERSISTENTVOLUMECLAIMS.path(
                    namespace=storage.namespace, name=metadata["name"]
                )
                storage.kube.patch(path, {"metadata": {"annotations": {SELECTED_NODE: None}}})
                self.refused.append(node)
                continue
            name = f"pvc-{metadata['uid']}"
            body = {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": name,
                    "annotations": {"pv.kubernetes.io/provisioned-by": self.driver},
                },
                "spec": {
                    "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                    "accessModes": spec["accessModes"],
                    "storageClassName": self.storage_class,
                    "persistentVolumeReclaimPolicy": "Delete",
                    "csi": {"driver": self.driver, "volumeHandle": name},
                    "nodeAffinity": on_node(node),
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "namespace": storage.namespace,
                        "name": metadata["name"],
                        "uid": metadata["uid"],
                    },
                },
            }
            with contextlib.suppress(Conflict):
                storage._create(PERSISTENTVOLUMES, body)
            self.provisioned[metadata["name"]] = node
