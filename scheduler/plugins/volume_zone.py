"""VolumeZone: the zone and region labels of the volumes the pod's claims are bound to must
match the node's (a beta label on the volume also matches the node's GA label). A node with
no zone or region label takes any volume, as in a single-zone cluster.
"""

from __future__ import annotations

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, ClusterView, PodContext, Reasons
from scheduler.podfacts import PodClaim, PodFacts
from scheduler.volumes.claims import volumes_of
from scheduler.volumes.matching import zones_allow

NAME = "VolumeZone"
ZONE_CONFLICT = "node(s) had no available volume zone"


class VolumeZone:
    name = NAME

    def prefilter(self, pod: PodFacts, cluster: ClusterView) -> tuple[PodClaim, ...] | None:
        """The claims named in the pod spec (not generic ephemeral ones), or None: skip."""
        return tuple(ref for ref in pod.claims if not ref.ephemeral) or None

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        volumes = volumes_of(ctx)
        if volumes is None or not volumes.zones:
            return FITS
        labels = node.facts.labels if node.facts is not None else {}
        return FITS if zones_allow(volumes.zones, labels) else (ZONE_CONFLICT,)
