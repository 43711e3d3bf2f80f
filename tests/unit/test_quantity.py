"""Annotation values to Mbps: units, bare Mbps, rounding up, and clear errors; quantities of
any magnitude read as a bounded number or a ``QuantityError``."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bandwidth.quantity import (
    MAX_REQUEST_MBPS,
    BandwidthValueError,
    QuantityError,
    parse_mbps,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("value", "mbps"),
    [
        ("100M", 100),
        ("1G", 1000),
        ("1Gi", 1074),  # 1073741824 bit/s rounds up, never down
        ("1500k", 2),
        ("100", 100),  # Kube-OVN: a bare number is Mbps
        ("2.5", 3),
        ("0", 0),
        ("100m", 1),  # a tenth of a bit per second still reserves one Mbps
        (" 10M ", 10),
        ("1e9", 1000),
        ("1e-1000006", 1),  # a positive value never reads as zero
        ("1.5e-999999Gi", 1),
        ("0e-99999999", 0),
        ("100.0000000000000000000000000001M", 101),  # 31 digits: no rounding to 28
    ],
)
def test_parses_units_and_bare_mbps(value: str, mbps: int) -> None:
    assert parse_mbps(value) == mbps


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("fast", "not a quantity"),
        ("-5M", "negative"),
        ("-5", "negative"),
        ("1.5.3", "not a quantity"),
        ("", "empty"),
        ("   ", "empty"),
        ("100Mbps", "not a quantity"),
        ("١٠٠", "not a number"),  # noqa: RUF001 - Arabic-Indic digits are not ASCII numbers
        ("5P", "more than"),
        ("NAN", "not a number"),
        ("Infinity", "more than"),
        (str(MAX_REQUEST_MBPS + 1), "more than"),
        ("1e1000006", "more than"),  # decimal.Overflow before the fix
        ("1E1000006", "more than"),
        ("1e1000006m", "more than"),
        ("1e999999", "more than"),
        ("-1e1000006", "negative|more than"),
        ("1e99999999999999999999", "more than"),
        ("1e-99999999Q", "not a quantity"),
        (".e-70", "not a quantity"),
    ],
)
def test_rejects_values_it_cannot_honour(value: str, reason: str) -> None:
    with pytest.raises(BandwidthValueError, match=reason) as caught:
        parse_mbps(value)
    assert caught.value.value == value


@given(st.integers(min_value=0, max_value=MAX_REQUEST_MBPS * 1_000_000))
def test_never_reserves_less_than_asked(bits_per_second: int) -> None:
    mbps = parse_mbps(f"{bits_per_second}e0")  # exponent form: read as bit/s, not bare Mbps
    assert mbps * 1_000_000 >= bits_per_second
    assert (mbps - 1) * 1_000_000 < bits_per_second or mbps == 0


@given(st.text(max_size=20))
def test_any_text_parses_or_raises_a_clear_error(value: str) -> None:
    try:
        mbps = parse_mbps(value)
    except BandwidthValueError as error:
        assert error.reason
    else:
        assert 0 <= mbps <= MAX_REQUEST_MBPS


exponent_forms = st.from_regex(
    r"[+-]?([0-9]{1,6}(\.[0-9]{0,6})?|\.[0-9]{1,6})[eE][+-]?[0-9]{1,12}([numkKMGTPE]|[KMGTPE]i)?",
    fullmatch=True,
)


@given(exponent_forms)
def test_any_exponent_reads_as_a_bounded_number_or_a_named_error(value: str) -> None:
    try:
        mbps = parse_mbps(value)
    except BandwidthValueError as error:
        assert error.reason and error.value == value
    else:
        assert 0 <= mbps <= MAX_REQUEST_MBPS
    try:
        amount = parse_quantity(value)
    except QuantityError as error:
        assert error.reason
    else:
        assert amount.is_finite() and abs(amount) <= Decimal("1e31")
        assert amount == 0 or abs(amount) >= Decimal("1e-9")
