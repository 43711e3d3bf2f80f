"""What a pod asks for: read from its annotations with configurable keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bandwidth.budget import LinkBudget, Usage
from bandwidth.quantity import BandwidthValueError, parse_mbps

DEFAULT_EGRESS_KEY = "kubernetes.io/egress-bandwidth"
DEFAULT_INGRESS_KEY = "kubernetes.io/ingress-bandwidth"
KUBE_OVN_EGRESS_KEY = "ovn.kubernetes.io/egress_rate"
KUBE_OVN_INGRESS_KEY = "ovn.kubernetes.io/ingress_rate"
DEFAULT_LINK_LOCAL_KEY = "bandwidth.vaclab.org/link-local"

_TRUE_WORDS = frozenset({"true", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "no", "0", ""})


@dataclass(frozen=True, slots=True)
class AnnotationKeys:
    """Which annotations carry a pod's uplink, downlink and link-local flag."""

    egress: str = DEFAULT_EGRESS_KEY
    ingress: str = DEFAULT_INGRESS_KEY
    link_local: str = DEFAULT_LINK_LOCAL_KEY


@dataclass(frozen=True, slots=True)
class BandwidthRequest:
    """Whole Mbps a pod needs. A link-local pod talks only within its node."""

    ul_mbps: int = 0
    dl_mbps: int = 0
    link_local: bool = False

    def is_zero(self) -> bool:
        return self.ul_mbps == 0 and self.dl_mbps == 0

    def charge(self) -> Usage:
        """What this request costs on each datapath: the NIC is spared for link-local pods."""
        link = LinkBudget(self.ul_mbps, self.dl_mbps)
        return Usage(local=link, network=LinkBudget() if self.link_local else link)

    def describe(self) -> str:
        scope = ", link-local" if self.link_local else ""
        return f"{self.ul_mbps} Mbps up / {self.dl_mbps} Mbps down{scope}"


NO_REQUEST = BandwidthRequest()


class InvalidBandwidthAnnotation(ValueError):
    """An annotation the pod carries that we cannot honour; the message names key and value."""

    def __init__(self, key: str, value: str, reason: str) -> None:
        super().__init__(f"annotation {key}={value!r} is invalid: {reason}")
        self.key = key
        self.value = value
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """How annotations become a request: keys plus what pods without them are charged."""

    keys: AnnotationKeys = AnnotationKeys()
    default_egress_mbps: int = 0
    default_ingress_mbps: int = 0


def _direction_mbps(annotations: Mapping[str, str], key: str, default_mbps: int) -> int:
    if key not in annotations:
        return default_mbps
    value = annotations[key]
    try:
        return parse_mbps(value)
    except BandwidthValueError as error:
        raise InvalidBandwidthAnnotation(key, value, error.reason) from error


def _flag(annotations: Mapping[str, str], key: str) -> bool:
    value = annotations.get(key, "")
    word = value.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise InvalidBandwidthAnnotation(key, value, "expected true or false")


def request_from_annotations(
    annotations: Mapping[str, str] | None, policy: RequestPolicy = RequestPolicy()
) -> BandwidthRequest:
    """The pod's request; raises ``InvalidBandwidthAnnotation`` rather than guess."""
    annotations = annotations or {}
    return BandwidthRequest(
        ul_mbps=_direction_mbps(annotations, policy.keys.egress, policy.default_egress_mbps),
        dl_mbps=_direction_mbps(annotations, policy.keys.ingress, policy.default_ingress_mbps),
        link_local=_flag(annotations, policy.keys.link_local),
    )


def carries_bandwidth_annotations(
    annotations: Mapping[str, str] | None, keys: AnnotationKeys
) -> bool:
    annotations = annotations or {}
    return keys.egress in annotations or keys.ingress in annotations
