"""Properties of the headroom arithmetic (``bandwidth.ledger``) over any numbers the CRD allows.

A capacity axis may hold up to 10^9 Mbps (the schema's maximum); a single request up to
``MAX_REQUEST_MBPS``; usage may already exceed capacity (a capacity lowered by hand).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bandwidth.budget import AXES, LinkBudget, Usage
from bandwidth.ledger import overcommitted_axes, shortfalls
from bandwidth.quantity import MAX_REQUEST_MBPS
from bandwidth.request import BandwidthRequest

SCHEMA_MAX_MBPS = 1_000_000_000

mbps = st.one_of(st.integers(0, 5000), st.integers(0, SCHEMA_MAX_MBPS))
usages = st.builds(Usage, st.builds(LinkBudget, mbps, mbps), st.builds(LinkBudget, mbps, mbps))
requests = st.builds(
    BandwidthRequest,
    st.one_of(st.integers(0, 500), st.integers(0, MAX_REQUEST_MBPS)),
    st.one_of(st.integers(0, 500), st.integers(0, MAX_REQUEST_MBPS)),
    st.booleans(),
)


@given(usages, usages, requests)
def test_a_request_that_fits_never_takes_any_axis_past_capacity(
    capacity: Usage, used: Usage, request: BandwidthRequest
) -> None:
    short = shortfalls(capacity, used, request)
    after = used + request.charge()
    if not short:
        assert all(after.on(axis) <= capacity.on(axis) for axis in AXES)
    assert short == [axis for axis in AXES if after.on(axis) > capacity.on(axis)]


@given(usages, usages, requests)
def test_nothing_fits_beside_an_axis_already_over_capacity(
    capacity: Usage, used: Usage, request: BandwidthRequest
) -> None:
    over = overcommitted_axes(capacity, used)
    assert over == [axis for axis in AXES if used.on(axis) > capacity.on(axis)]
    if over:
        assert set(over) <= set(shortfalls(capacity, used, request))
