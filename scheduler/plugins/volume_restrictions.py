"""VolumeRestrictions: a ``ReadWriteOncePod`` claim already used by another pod — bound, or
placed by a decision still being written — keeps this pod off every node.

Inline in-tree disks (GCE PD, AWS EBS, RBD, iSCSI), whose conflicts kube-scheduler also checks
here, are refused earlier as unsupported (``podfacts.IN_TREE_VOLUMES``).
"""

from __future__ import annotations

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, ClusterView, PodContext, Reasons
from scheduler.podfacts import PodClaim, PodFacts
from scheduler.volumes.claims import volumes_of

NAME = "VolumeRestrictions"
READ_WRITE_ONCE_POD_CONFLICT = (
    "node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access mode "
    "already in-use by another pod"
)


class VolumeRestrictions:
    name = NAME

    def prefilter(self, pod: PodFacts, cluster: ClusterView) -> tuple[PodClaim, ...] | None:
        """The claims named in the pod spec (not generic ephemeral ones), or None: skip."""
        return tuple(ref for ref in pod.claims if not ref.ephemeral) or None

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        volumes = volumes_of(ctx)
        if volumes is not None and volumes.read_write_once_pod_in_use:
            return (READ_WRITE_ONCE_POD_CONFLICT,)
        return FITS
