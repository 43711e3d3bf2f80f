"""NodeVolumeLimits: a node takes no more volumes of a CSI driver than its CSINode's
``allocatable.count`` for that driver.

A volume counts once per node however many pods use it: the node's bound and in-flight pods'
volumes are counted, and the pod's own volumes already among them are not counted again. A
claim not bound yet counts under its class's provisioner. Nodes without a CSINode, and drivers
without a count, have no limit.
"""

from __future__ import annotations

from collections import Counter

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, ClusterView, PodContext, Reasons
from scheduler.podfacts import PodClaim, PodFacts
from scheduler.volumes.claims import volumes_of

NAME = "NodeVolumeLimits"
MAX_VOLUME_COUNT = "node(s) exceed max volume count"


class NodeVolumeLimits:
    name = NAME

    def prefilter(self, pod: PodFacts, cluster: ClusterView) -> tuple[PodClaim, ...] | None:
        """The pod's claims, or None: nothing to count, skip."""
        return pod.claims or None

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        volumes = volumes_of(ctx)
        if volumes is None or not volumes.attachable:
            return FITS
        limits = volumes.view.volume_limits(node.name)
        if not any(driver in limits for driver in volumes.attachable.values()):
            return FITS
        attached: dict[str, str] = {}
        for pod in (*node.pods.values(), *node.assumed.values()):
            if pod.claims and pod.uid != ctx.pod.uid:
                attached.update(volumes.view.attachable_of(pod))
        in_use = Counter(attached.values())
        new = Counter(d for name, d in volumes.attachable.items() if name not in attached)
        for driver, count in new.items():
            limit = limits.get(driver)
            if limit is not None and in_use[driver] + count > limit:
                return (MAX_VOLUME_COUNT,)
        return FITS
