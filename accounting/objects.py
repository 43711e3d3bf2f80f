"""Small readers of the raw objects the accounting controller's caches hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accounting.pods import Workload
from kubeio.pods import owner_of


def name_of(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("name", ""))


def metadata_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    metadata = (obj or {}).get("metadata") or {}
    return metadata if isinstance(metadata, Mapping) else {}


def key_of(obj: Mapping[str, Any] | None) -> str:
    """``namespace/name`` of a namespaced object."""
    return f"{metadata_of(obj).get('namespace', '')}/{name_of(obj)}"


def node_name_of_pod(pod: Mapping[str, Any] | None) -> str:
    return str(((pod or {}).get("spec") or {}).get("nodeName") or "")


def reserved_uids(bandwidth: Mapping[str, Any] | None) -> set[str]:
    entries = ((bandwidth or {}).get("spec") or {}).get("reservations") or []
    return {str(e.get("podUID")) for e in entries if isinstance(e, Mapping) and e.get("podUID")}


def replicaset_of_pod(pod: Mapping[str, Any] | None) -> str:
    """``namespace/name`` of the ReplicaSet controlling the pod, or ""."""
    owner = owner_of(metadata_of(pod))
    if owner is None or owner.kind != "ReplicaSet":
        return ""
    return f"{metadata_of(pod).get('namespace', '')}/{owner.name}"


def controller_of(obj: Mapping[str, Any] | None) -> Workload | None:
    return owner_of(metadata_of(obj))


def node_owner_uid(bandwidth: Mapping[str, Any]) -> str:
    """The UID of the Node this Bandwidth was created for, or "" if a user created it."""
    for reference in metadata_of(bandwidth).get("ownerReferences") or []:
        if reference.get("kind") == "Node" and reference.get("apiVersion") == "v1":
            return str(reference.get("uid", ""))
    return ""


def describe_capacity(bandwidth: Mapping[str, Any]) -> str:
    capacity = ((bandwidth.get("spec") or {}).get("capacity")) or {}
    local = capacity.get("local") or {}
    network = capacity.get("network") or {}
    return (
        f"network {network.get('ulMbps')}/{network.get('dlMbps')} Mbps, "
        f"local {local.get('ulMbps')}/{local.get('dlMbps')} Mbps (up/down)"
    )
