"""Parse a bandwidth annotation value into whole megabits per second.

Two conventions meet in the field:

- A Kubernetes quantity with a unit is bits per second, as the CNI bandwidth plugin reads
  ``kubernetes.io/egress-bandwidth``: ``"100M"`` is 100 Mbps, ``"1G"`` 1000 Mbps, ``"1Gi"``
  1073741824 bit/s.
- A bare number is Mbps, as Kube-OVN reads ``ovn.kubernetes.io/egress_rate``: ``"100"``.

The result is rounded *up* to a whole Mbps: a reservation is never smaller than what was
asked. Anything else (empty, negative, not a number, absurdly large) raises
``BandwidthValueError``; it is never read as zero.
"""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal, InvalidOperation

from kubernetes.utils.quantity import parse_quantity

# One terabit per second for a single pod is beyond any NIC in the field: a typo, not a wish.
MAX_REQUEST_MBPS = 1_000_000

_BITS_PER_MEGABIT = Decimal(1_000_000)
_BARE_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class BandwidthValueError(ValueError):
    """A bandwidth value that cannot be honoured; ``reason`` says why in a few words."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"{value!r}: {reason}")
        self.value = value
        self.reason = reason


@functools.lru_cache(maxsize=4096)
def parse_mbps(value: str) -> int:
    """Whole Mbps for an annotation value, rounded up; raises ``BandwidthValueError``."""
    text = value.strip()
    if not text:
        raise BandwidthValueError(value, "empty value")
    if not text.isascii():
        raise BandwidthValueError(value, "not a number")
    if _BARE_NUMBER.match(text):
        mbps = Decimal(text)
    else:
        try:
            bits_per_second: Decimal = parse_quantity(text)
        except (ValueError, InvalidOperation) as error:
            raise BandwidthValueError(
                value, "not a quantity (expected e.g. 100M, 1G, or a bare number of Mbps)"
            ) from error
        mbps = bits_per_second / _BITS_PER_MEGABIT
    if mbps.is_nan():
        raise BandwidthValueError(value, "not a number")
    if mbps < 0:
        raise BandwidthValueError(value, "negative bandwidth")
    if not mbps.is_finite() or mbps > MAX_REQUEST_MBPS:
        raise BandwidthValueError(value, f"more than {MAX_REQUEST_MBPS} Mbps")
    return math.ceil(mbps)
