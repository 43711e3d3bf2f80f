"""VolumeBinding: the pod's claims must be bound to volumes the node can use, or bindable there.

Bound claims: the volume's required node affinity must match the node. Claims of a
``WaitForFirstConsumer`` class still unbound: a matching volume must exist for the node (each
volume given to one claim only), or the class must provision on the node. What the claims
need as a whole (a claim missing, an ``Immediate`` claim unbound) is the pod's rejection,
repeated on every node for callers that filter node by node. The binding itself is
``scheduler.volumebinder``'s, after the decision.
"""

from __future__ import annotations

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, ClusterView, PodContext, Reasons
from scheduler.podfacts import PodFacts
from scheduler.volumes.claims import VOLUMES, PodVolumes, find_pod_volumes, volumes_of

NAME = VOLUMES


class VolumeBinding:
    name = NAME

    def prefilter(self, pod: PodFacts, cluster: ClusterView) -> PodVolumes | None:
        """The pod's claims resolved (the other volume plugins read them too); None, and
        no volume plugin runs, for a pod without claims."""
        return cluster.volumes.pod_volumes(pod, cluster.nodes)

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        volumes = volumes_of(ctx)
        if volumes is None:
            return FITS
        if volumes.rejection is not None:
            return (volumes.rejection.reason,)
        if not volumes.bound and not volumes.to_bind:
            return FITS
        labels = node.facts.labels if node.facts is not None else {}
        _, reasons = find_pod_volumes(volumes, node.name, labels)
        return reasons
