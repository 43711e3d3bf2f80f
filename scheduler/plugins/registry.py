"""The one place that names the plugins and their order."""

from __future__ import annotations

from scheduler.config import ScoreWeights
from scheduler.plugins.bandwidth_fit import BandwidthFit
from scheduler.plugins.colocation import SiblingColocation, SiblingRoom
from scheduler.plugins.framework import FilterPlugin, PreFilterPlugin, ScorePlugin
from scheduler.plugins.inter_pod_affinity import InterPodAffinity
from scheduler.plugins.node_affinity import NodeAffinity
from scheduler.plugins.node_ports import NodePorts
from scheduler.plugins.node_ready import NodeReady
from scheduler.plugins.node_volume_limits import NodeVolumeLimits
from scheduler.plugins.pod_topology_spread import PodTopologySpread
from scheduler.plugins.resource_fit import ResourceFit
from scheduler.plugins.taint_toleration import TaintToleration
from scheduler.plugins.volume_binding import VolumeBinding
from scheduler.plugins.volume_restrictions import VolumeRestrictions
from scheduler.plugins.volume_zone import VolumeZone


def default_prefilters() -> list[PreFilterPlugin]:
    """The plugins that prepare per-pod state once per decision, before any filter: a plugin
    that finds nothing to check for the pod is skipped for it (``decide.skips``)."""
    return [
        NodePorts(),
        VolumeRestrictions(),
        NodeVolumeLimits(),
        VolumeBinding(),
        VolumeZone(),
        PodTopologySpread(),
        InterPodAffinity(),
    ]


def default_filters() -> list[FilterPlugin]:
    """Cheap, common rejections first: the first failing filter explains the node.

    The order is kube-scheduler's (so a node refused for several reasons is counted under
    the same one), with bandwidth before compute resources: in a bandwidth-bound cluster it
    rejects most nodes, and its check is four integer comparisons."""
    return [
        NodeReady(),
        TaintToleration(),
        NodeAffinity(),
        NodePorts(),
        BandwidthFit(),
        ResourceFit(),
        VolumeRestrictions(),
        NodeVolumeLimits(),
        VolumeBinding(),
        VolumeZone(),
        PodTopologySpread(),
        InterPodAffinity(),
    ]


def default_scorers(weights: ScoreWeights) -> list[tuple[ScorePlugin, int]]:
    scored: list[tuple[ScorePlugin, int]] = [
        (SiblingColocation(), weights.colocation),
        (SiblingRoom(), weights.sibling_room),
        (BandwidthFit(), weights.bandwidth_headroom),
        (NodeAffinity(), weights.node_affinity),
        (TaintToleration(), weights.taint_toleration),
        (InterPodAffinity(), weights.pod_affinity),
        (PodTopologySpread(), weights.topology_spread),
    ]
    return [(plugin, weight) for plugin, weight in scored if weight > 0]
