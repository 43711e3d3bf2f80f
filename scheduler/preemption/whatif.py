"""A node in a what-if: pods taken off it or put on it, the plugins' per-pod state kept true.

kube-scheduler's preemption dry run and its nominated-pods filter work on a copy of the node
and a copy of the cycle state, and tell each plugin of every pod they take away or add
(PreFilterExtensions ``RemovePod``/``AddPod``). ``WhatIf`` is that copy::

    WhatIf(ctx, node, filters)       node.snapshot() and a copy of each extended plugin's state
      .remove(pod)                   off the node: requests, host ports, bandwidth (its ledger
                                     reservation too) and its share of the inter-pod and
                                     spread counts
      .add(pod)                      on the node (back, or nominated there): the reverse
      .ctx, .node                    what to run the filters on (``decide.filter_node``)

Nothing outside the copy changes: the snapshot is out of the pod index, and the states are
the plugins' own copies. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bandwidth.model import Reservation
from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FilterPlugin, PodContext, PreFilterExtensions
from scheduler.podfacts import PodFacts


class WhatIf:
    def __init__(self, ctx: PodContext, node: NodeInfo, filters: Sequence[FilterPlugin]) -> None:
        self.node = node.snapshot()
        self._extensions = [
            plugin
            for plugin in filters
            if isinstance(plugin, PreFilterExtensions) and plugin.name in ctx.cycle
        ]
        cycle = dict(ctx.cycle)
        for plugin in self._extensions:
            cycle[plugin.name] = plugin.copy_state(cycle[plugin.name])
        self.ctx = replace(ctx, cycle=cycle) if self._extensions else ctx
        self._taken: dict[str, Reservation] = {}

    def remove(self, pod: PodFacts) -> None:
        node = self.node
        if pod.uid in node.pods:
            node.remove_pod(pod.uid, None)
        else:
            node.forget(pod.uid, None)
        ledger = node.bandwidth
        if ledger is not None and pod.uid in ledger.reservations:
            self._taken[pod.uid] = ledger.reservations[pod.uid]
            kept = {uid: r for uid, r in ledger.reservations.items() if uid != pod.uid}
            node.set_bandwidth(replace(ledger, reservations=kept), node.bandwidth_problem)
        for plugin in self._extensions:
            plugin.remove_pod(self.ctx.cycle[plugin.name], self.ctx.pod, pod, node)

    def add(self, pod: PodFacts) -> None:
        node = self.node
        node.add_pod(pod, None)
        reservation = self._taken.pop(pod.uid, None)
        ledger = node.bandwidth
        if reservation is not None and ledger is not None:
            held = {**ledger.reservations, pod.uid: reservation}
            node.set_bandwidth(replace(ledger, reservations=held), node.bandwidth_problem)
        for plugin in self._extensions:
            plugin.add_pod(self.ctx.cycle[plugin.name], self.ctx.pod, pod, node)


def with_nominated(
    ctx: PodContext, node: NodeInfo, filters: Sequence[FilterPlugin], nominated: Sequence[PodFacts]
) -> tuple[PodContext, NodeInfo]:
    """``ctx`` and ``node`` with the ``nominated`` pods placed on the node, for the filters
    (kube's ``addGENominatedPods``); the returned context lists no nominated pods."""
    what_if = WhatIf(ctx, node, filters)
    for pod in nominated:
        what_if.add(pod)
    return replace(what_if.ctx, nominated={}), what_if.node
