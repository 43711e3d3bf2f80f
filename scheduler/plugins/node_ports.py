"""A pod's host ports must be free on the node, protocol and host IP aware.

A port bound on every address (``hostIP`` left out or ``0.0.0.0``) clashes with the same
protocol and port on any address of the node; a port on one address clashes with that address
and with every-address. Ports in use are those of the pods bound to the node and of the pods
assumed there, whoever scheduled them (``NodeInfo.used_ports``). A clash is resolvable by
preemption: the pod holding the port may be taken away.
"""

from __future__ import annotations

from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.framework import FITS, ClusterView, PodContext, Reasons
from scheduler.podfacts import PodFacts
from scheduler.podterms import HostPort

NAME = "NodePorts"
PORTS_TAKEN = "node(s) didn't have free ports for the requested pod ports"


class NodePorts:
    name = NAME

    def prefilter(self, pod: PodFacts, cluster: ClusterView) -> tuple[HostPort, ...] | None:
        return pod.host_ports or None

    def filter(self, ctx: PodContext, node: NodeInfo) -> Reasons:
        wanted = ctx.pod.host_ports
        if not wanted or not node.used_ports:
            return FITS
        if any(node.port_conflicts(port) for port in wanted):
            return (PORTS_TAKEN,)
        return FITS

    def resolvable(self, ctx: PodContext, node: NodeInfo) -> bool:
        return True
