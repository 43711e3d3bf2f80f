"""What the soak's pods ask for, and the auditor's own reading of it.

The pods come in StatefulSet-like sets (``web-0``, ``web-1``, ...; a deleted pod comes back
under the same name with a new UID). Their annotations use every spelling the project accepts
(``100M``, ``0.5G``, ``1Gi``, ``200000k``, a bare ``250`` read as Mbps), some pods ask only one
direction, and two sets are link-local (only the node's virtual switch is charged).

:data:`SIZES` is the auditor's oracle: the Mbps each annotation value stands for, written out
by hand rather than computed by ``bandwidth.quantity``, so a parsing bug in the code under test
cannot hide itself from the check. Any other value makes :func:`demand_of` raise.

With ``network 1000 / local 3000`` Mbps per node the sets ask, per node, about 100% of the
network uplink, 120% of the network downlink and 80-90% of the local datapath: some pods always
wait, so a pod left pending although it fits is visible, and the nodes run full, so an
over-commitment is visible too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EGRESS = "kubernetes.io/egress-bandwidth"
INGRESS = "kubernetes.io/ingress-bandwidth"
LINK_LOCAL = "bandwidth.vaclab.org/link-local"
SET_LABEL = "chaos.test.vaclab.org/set"

NETWORK_MBPS = 1000
LOCAL_MBPS = 3000

SIZES: Mapping[str, int] = {
    "10M": 10,
    "50M": 50,
    "100M": 100,
    "200000k": 200,
    "250": 250,
    "400M": 400,
    "0.5G": 500,
    "600M": 600,
    "1Gi": 1074,  # 1073.741824 Mbps, rounded up
}

AXES = ("network-ul", "network-dl", "local-ul", "local-dl")
Charge = tuple[int, int, int, int]
"""Mbps on ``AXES``, in that order."""
ZERO: Charge = (0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Demand:
    ul_mbps: int
    dl_mbps: int
    link_local: bool

    def charge(self) -> Charge:
        """The link-local pod spares the NIC; every pod uses the node's switch."""
        network = (0, 0) if self.link_local else (self.ul_mbps, self.dl_mbps)
        return (*network, self.ul_mbps, self.dl_mbps)

    def is_zero(self) -> bool:
        return self.ul_mbps == 0 and self.dl_mbps == 0


class UnknownSize(ValueError):
    """A pod annotation the oracle has no value for: the pod was not made by the soak."""


def demand_of(annotations: Mapping[str, str] | None) -> Demand:
    notes = annotations or {}
    mbps = []
    for key in (EGRESS, INGRESS):
        value = notes.get(key)
        if value is None:
            mbps.append(0)
        elif value in SIZES:
            mbps.append(SIZES[value])
        else:
            raise UnknownSize(f"{key}={value!r} is not one of the soak's sizes")
    return Demand(mbps[0], mbps[1], notes.get(LINK_LOCAL) == "true")


def pod_demand(pod: Mapping[str, Any]) -> Demand:
    return demand_of((pod.get("metadata") or {}).get("annotations"))


def add(left: Charge, right: Charge) -> Charge:
    return (left[0] + right[0], left[1] + right[1], left[2] + right[2], left[3] + right[3])


def sub(left: Charge, right: Charge) -> Charge:
    return (left[0] - right[0], left[1] - right[1], left[2] - right[2], left[3] - right[3])


def at_most(left: Charge, right: Charge) -> bool:
    return all(a <= b for a, b in zip(left, right, strict=True))


def over_axes(used: Charge, capacity: Charge) -> list[str]:
    return [axis for axis, u, c in zip(AXES, used, capacity, strict=True) if u > c]


def describe(charge: Charge) -> str:
    return " ".join(f"{axis}={mbps}" for axis, mbps in zip(AXES, charge, strict=True))


@dataclass(frozen=True, slots=True)
class PodSet:
    """A StatefulSet-like set: ``replicas_per_node`` times the node count, rounded."""

    name: str
    egress: str | None
    ingress: str | None
    link_local: bool
    replicas_per_node: float

    def replicas(self, nodes: int) -> int:
        return max(1, math.floor(self.replicas_per_node * nodes + 0.5))

    def annotations(self) -> dict[str, str]:
        notes: dict[str, str] = {}
        if self.egress is not None:
            notes[EGRESS] = self.egress
        if self.ingress is not None:
            notes[INGRESS] = self.ingress
        if self.link_local:
            notes[LINK_LOCAL] = "true"
        return notes


POD_SETS: tuple[PodSet, ...] = (
    PodSet("web", "100M", "100M", False, 2.0),
    PodSet("db", "250", "250", False, 1.5),
    PodSet("relay", "400M", None, False, 1.0),
    PodSet("stream", None, "0.5G", False, 1.0),
    PodSet("p2p", "600M", "600M", True, 1.5),
    PodSet("mesh", "1Gi", "1Gi", True, 0.5),
    PodSet("tiny", "10M", "50M", False, 1.5),
    PodSet("bulk", "200000k", "200000k", False, 1.0),
)


def pod_names(nodes: int) -> dict[str, PodSet]:
    """Every pod name the load keeps alive, with its set."""
    return {
        f"{pod_set.name}-{ordinal}": pod_set
        for pod_set in POD_SETS
        for ordinal in range(pod_set.replicas(nodes))
    }
