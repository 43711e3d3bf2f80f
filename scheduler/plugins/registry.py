"""The one place that names the plugins and their order."""

from __future__ import annotations

from scheduler.config import ScoreWeights
from scheduler.plugins.bandwidth_fit import BandwidthFit
from scheduler.plugins.colocation import SiblingColocation, SiblingRoom
from scheduler.plugins.framework import FilterPlugin, ScorePlugin
from scheduler.plugins.node_affinity import NodeAffinity
from scheduler.plugins.node_ready import NodeReady
from scheduler.plugins.resource_fit import ResourceFit
from scheduler.plugins.taint_toleration import TaintToleration


def default_filters() -> list[FilterPlugin]:
    """Cheap, common rejections first: the first failing filter explains the node.

    Bandwidth comes before compute resources: in a bandwidth-bound cluster it rejects most
    nodes, and its check is four integer comparisons."""
    return [NodeReady(), TaintToleration(), NodeAffinity(), BandwidthFit(), ResourceFit()]


def default_scorers(weights: ScoreWeights) -> list[tuple[ScorePlugin, int]]:
    scored: list[tuple[ScorePlugin, int]] = [
        (SiblingColocation(), weights.colocation),
        (SiblingRoom(), weights.sibling_room),
        (BandwidthFit(), weights.bandwidth_headroom),
        (NodeAffinity(), weights.node_affinity),
        (TaintToleration(), weights.taint_toleration),
    ]
    return [(plugin, weight) for plugin, weight in scored if weight > 0]
