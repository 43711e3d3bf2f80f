"""API paths of the kinds both daemons read and write."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, *, namespace: str | None = None, name: str | None = None, subresource: str = ""
    ) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        if subresource:
            base += f"/{subresource}"
        return base


PODS = Resource("", "v1", "pods", namespaced=True)
NODES = Resource("", "v1", "nodes", namespaced=False)
EVENTS = Resource("", "v1", "events", namespaced=True)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
REPLICASETS = Resource("apps", "v1", "replicasets", namespaced=True)
STATEFULSETS = Resource("apps", "v1", "statefulsets", namespaced=True)
DEPLOYMENTS = Resource("apps", "v1", "deployments", namespaced=True)
JOBS = Resource("batch", "v1", "jobs", namespaced=True)
PODDISRUPTIONBUDGETS = Resource("policy", "v1", "poddisruptionbudgets", namespaced=True)
LEASES = Resource("coordination.k8s.io", "v1", "leases", namespaced=True)
BANDWIDTHS = Resource("networking.vaclab.org", "v1", "bandwidths", namespaced=False)
RESOURCECLAIMS = Resource("resource.k8s.io", "v1", "resourceclaims", namespaced=True)
RESOURCESLICES = Resource("resource.k8s.io", "v1", "resourceslices", namespaced=False)
PERSISTENTVOLUMES = Resource("", "v1", "persistentvolumes", namespaced=False)
PERSISTENTVOLUMECLAIMS = Resource("", "v1", "persistentvolumeclaims", namespaced=True)
STORAGECLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False)
CSINODES = Resource("storage.k8s.io", "v1", "csinodes", namespaced=False)
CSIDRIVERS = Resource("storage.k8s.io", "v1", "csidrivers", namespaced=False)
CSISTORAGECAPACITIES = Resource("storage.k8s.io", "v1", "csistoragecapacities", namespaced=True)
