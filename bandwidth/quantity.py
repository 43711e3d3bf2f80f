"""Parse Kubernetes quantities and bandwidth annotation values, never trusting their size.

Two conventions meet in the field for bandwidth:

- A Kubernetes quantity with a unit is bits per second, as the CNI bandwidth plugin reads
  ``kubernetes.io/egress-bandwidth``: ``"100M"`` is 100 Mbps, ``"1G"`` 1000 Mbps, ``"1Gi"``
  1073741824 bit/s.
- A bare number is Mbps, as Kube-OVN reads ``ovn.kubernetes.io/egress_rate``: ``"100"``.

The result is rounded *up* to a whole Mbps: a reservation is never smaller than what was
asked. Anything else (empty, negative, not a number, absurdly large) raises
``BandwidthValueError``; it is never read as zero.

``parse_quantity`` is the one reader of Kubernetes quantity text (annotations, node
capacities, resource requests): exact arithmetic, and magnitudes bounded before any is done,
so ``"1e1000006"`` is a ``QuantityError`` (a ``ValueError``) like ``"fast"``, never a
``decimal.Overflow`` or a million-digit integer.
"""

from __future__ import annotations

import decimal
import functools
import math
import re
from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity as _kube_parse_quantity

# One terabit per second for a single pod is beyond any NIC in the field: a typo, not a wish.
MAX_REQUEST_MBPS = 1_000_000

# Far beyond any real quantity (an exbibyte is 1.2e18) and far inside what Decimal and int
# handle cheaply. Kubernetes itself rounds quantities below one nano up to one nano.
_LARGEST_EXPONENT = 30
_SMALLEST = Decimal("1e-9")

_BITS_PER_MEGABIT = Decimal(1_000_000)
_BARE_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_QUANTITY = re.compile(
    r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?(?:[KMGTPE]i|[numkKMGTPE])?$"
)


class QuantityError(ValueError):
    """Quantity text that cannot be read as a finite, bounded number; ``reason`` says why."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"{value!r}: {reason}")
        self.value = value
        self.reason = reason


class BandwidthValueError(QuantityError):
    """A bandwidth value that cannot be honoured; ``reason`` says why in a few words."""


def _exact_context(text: str) -> decimal.Context:
    # Enough digits for the text times any unit exactly; anything inexact is refused.
    context = decimal.Context(prec=len(text) + 40, rounding=decimal.ROUND_CEILING)
    for signal in (decimal.Inexact, decimal.Overflow, decimal.Underflow, decimal.Subnormal):
        context.traps[signal] = True
    return context


def _tiny_or_huge(text: str) -> Decimal | None:
    """For a written exponent too far out to compute with (``1e400``, ``1e-99999999``): the
    value Kubernetes would read for a tiny one (zero, or one nano with its sign); raises
    ``QuantityError`` for a huge one. None for every other text."""
    match = _QUANTITY.match(text)
    if match is None or match.group(2) is None:
        return None
    written = match.group(2)
    digits = written.lstrip("+-").lstrip("0")
    if len(digits) <= 6 and int(written) <= 2 * _LARGEST_EXPONENT:
        if int(written) >= -2 * _LARGEST_EXPONENT:
            return None
    elif not written.startswith("-"):
        raise QuantityError(text, "too large")
    if not match.group(1).strip(".0"):
        return Decimal(0)
    return -_SMALLEST if text.startswith("-") else _SMALLEST


@functools.lru_cache(maxsize=8192)
def parse_quantity(value: str) -> Decimal:
    """A Kubernetes quantity (``100M``, ``1Gi``, ``250m``, ``1e9``) as an exact Decimal.

    Negative values are returned as such (callers decide); raises ``QuantityError`` for text
    that is not a quantity, not finite, or larger than 10^30 in magnitude (reason ``too
    large``). A positive value below 10^-9 reads as 10^-9, as Kubernetes rounds it.
    """
    text = value.strip()
    if not text:
        raise QuantityError(value, "empty value")
    if not text.isascii():
        raise QuantityError(value, "not a number")
    try:
        extreme = _tiny_or_huge(text)
    except QuantityError as error:
        raise QuantityError(value, error.reason) from None
    if extreme is not None:
        return extreme
    try:
        with decimal.localcontext(_exact_context(text)):
            amount: Decimal = _kube_parse_quantity(text)
    except (ValueError, ArithmeticError) as error:
        raise QuantityError(value, "not a quantity") from error
    if amount.is_nan():
        raise QuantityError(value, "not a number")
    if not amount.is_finite() or (amount and amount.adjusted() > _LARGEST_EXPONENT):
        raise QuantityError(value, "too large")
    if 0 < amount < _SMALLEST:
        return _SMALLEST
    if -_SMALLEST < amount < 0:
        return -_SMALLEST
    return amount


@functools.lru_cache(maxsize=4096)
def parse_mbps(value: str) -> int:
    """Whole Mbps for an annotation value, rounded up; raises ``BandwidthValueError``."""
    text = value.strip()
    if not text:
        raise BandwidthValueError(value, "empty value")
    if not text.isascii():
        raise BandwidthValueError(value, "not a number")
    if _BARE_NUMBER.match(text):
        mbps = Decimal(text)  # exact: digits and one dot only
    else:
        try:
            bits_per_second = parse_quantity(text)
        except QuantityError as error:
            if error.reason == "too large":
                raise BandwidthValueError(value, f"more than {MAX_REQUEST_MBPS} Mbps") from error
            if error.reason == "not a number":
                raise BandwidthValueError(value, error.reason) from error
            raise BandwidthValueError(
                value, "not a quantity (expected e.g. 100M, 1G, or a bare number of Mbps)"
            ) from error
        if bits_per_second < 0:
            raise BandwidthValueError(value, "negative bandwidth")
        if bits_per_second > MAX_REQUEST_MBPS * _BITS_PER_MEGABIT:
            raise BandwidthValueError(value, f"more than {MAX_REQUEST_MBPS} Mbps")
        with decimal.localcontext(_exact_context(text)) as context:
            context.traps[decimal.Inexact] = False  # the division rounds up (ROUND_CEILING)
            mbps = bits_per_second / _BITS_PER_MEGABIT
    if mbps > MAX_REQUEST_MBPS:
        raise BandwidthValueError(value, f"more than {MAX_REQUEST_MBPS} Mbps")
    return math.ceil(mbps)
