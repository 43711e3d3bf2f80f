"""Properties of the bandwidth filter on plain ``NodeInfo`` objects: whatever the ledger, the
pods bound and the decisions in flight, a pod the filter lets through never takes any axis of
the node past its capacity, and the filter never raises.

Each example builds a node (capacity up to the CRD's 10^9 Mbps; ledger entries, bound pods of
other schedulers and assumed decisions, some of them for the same pod UID), then offers it pods
one by one, assuming each one the filter accepts, as the scheduling loop does.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bandwidth.budget import AXES, LinkBudget, Usage
from bandwidth.model import NodeBandwidth, Reservation
from bandwidth.quantity import MAX_REQUEST_MBPS
from bandwidth.request import BandwidthRequest
from scheduler.nodeinfo import NodeFacts, NodeInfo
from scheduler.plugins.bandwidth_fit import BandwidthFit
from scheduler.plugins.framework import PodContext
from scheduler.podfacts import PodFacts

SCHEMA_MAX_MBPS = 1_000_000_000

mbps = st.one_of(st.integers(0, 3000), st.integers(0, SCHEMA_MAX_MBPS))
capacities = st.builds(Usage, st.builds(LinkBudget, mbps, mbps), st.builds(LinkBudget, mbps, mbps))
requests = st.builds(
    BandwidthRequest,
    st.one_of(st.integers(0, 400), st.integers(0, MAX_REQUEST_MBPS)),
    st.one_of(st.integers(0, 400), st.integers(0, MAX_REQUEST_MBPS)),
    st.booleans(),
)
uids = st.sampled_from([f"uid-{i}" for i in range(12)])


def pod(uid: str, request: BandwidthRequest, node: str = "") -> PodFacts:
    return PodFacts(
        uid=uid,
        namespace="ns",
        name=uid,
        node_name=node,
        phase="Running" if node else "Pending",
        scheduler_name="vaclab-scheduler",
        priority=0,
        created="",
        requests={},
        bandwidth=request,
        charge=request.charge().as_tuple(),
    )


def node_with(
    capacity: Usage,
    ledger: dict[str, BandwidthRequest],
    bound: dict[str, BandwidthRequest],
    assumed: dict[str, BandwidthRequest],
) -> NodeInfo:
    info = NodeInfo("n1")
    info.facts = NodeFacts("n1", {}, (), False, True, {})
    info.set_bandwidth(
        NodeBandwidth(
            "n1",
            "n1",
            capacity,
            {uid: Reservation(uid, uid, "ns", request) for uid, request in ledger.items()},
        )
    )
    for uid, request in bound.items():
        info.add_pod(pod(uid, request, "n1"), None)
    for uid, request in assumed.items():
        info.assume(pod(uid, request), None)
    return info


def charged(info: NodeInfo) -> Usage:
    """Everything charged on the node, once per pod UID, recounted from scratch."""
    return sum((r.charge() for r in info.charged_requests().values()), Usage())


@given(
    capacities,
    st.dictionaries(uids, requests, max_size=4),
    st.dictionaries(uids, requests, max_size=4),
    st.dictionaries(uids, requests, max_size=3),
    st.lists(st.tuples(uids, requests), max_size=12),
)
def test_a_pod_that_passes_the_filter_never_takes_an_axis_past_capacity(
    capacity: Usage,
    ledger: dict[str, BandwidthRequest],
    bound: dict[str, BandwidthRequest],
    assumed: dict[str, BandwidthRequest],
    offered: list[tuple[str, BandwidthRequest]],
) -> None:
    info = node_with(capacity, ledger, bound, assumed)
    fit = BandwidthFit()
    started_over = [axis for axis in AXES if charged(info).on(axis) > capacity.on(axis)]
    for uid, request in offered:
        if uid in info.assumed or uid in info.pods:
            continue  # the loop offers only pods neither bound nor in flight
        ctx = PodContext(pod(uid, request))
        reasons = fit.filter(ctx, info)
        assert all(isinstance(r, str) and r for r in reasons)
        if started_over:
            assert reasons, f"{uid} passed beside {started_over} already over capacity"
            continue
        if reasons:
            continue
        info.assume(ctx.pod, None)
        used = charged(info)
        assert info.bandwidth_used == used
        assert all(used.on(axis) <= capacity.on(axis) for axis in AXES), (uid, request, used)


@given(capacities, st.dictionaries(uids, requests, min_size=1, max_size=5), requests)
def test_a_pod_holding_a_reservation_is_charged_what_the_ledger_says(
    capacity: Usage, ledger: dict[str, BandwidthRequest], offered: BandwidthRequest
) -> None:
    """Its own entry is already part of what is charged: it fits wherever the node is within
    capacity (the scheduler binds it on that reservation), and nowhere the node is not."""
    uid = next(iter(ledger))
    info = node_with(capacity, ledger, {}, {})
    reasons = BandwidthFit().filter(PodContext(pod(uid, offered)), info)
    used = charged(info)
    within = all(used.on(axis) <= capacity.on(axis) for axis in AXES)
    assert (not reasons) == within
    info.assume(pod(uid, offered), None)
    assert charged(info) == used  # once per UID: assuming it adds nothing


@given(requests)
def test_a_node_without_a_bandwidth_object_takes_only_pods_that_ask_for_nothing(
    request: BandwidthRequest,
) -> None:
    info = NodeInfo("n1")
    info.facts = NodeFacts("n1", {}, (), False, True, {})
    reasons = BandwidthFit().filter(PodContext(pod("p", request)), info)
    assert (not reasons) == request.is_zero()


@given(
    capacities,
    st.dictionaries(uids, requests, max_size=4),
    st.lists(
        st.tuples(st.sampled_from(["add", "remove", "assume", "forget", "ledger"]), uids, requests),
        max_size=30,
    ),
)
def test_the_charge_kept_per_pod_event_is_the_charge_recounted(
    capacity: Usage,
    ledger: dict[str, BandwidthRequest],
    events: list[tuple[str, str, BandwidthRequest]],
) -> None:
    """Each pod event adjusts the node's total by that pod's charge alone; whatever the mix of
    ledger entries, bound and assumed pods for the same UIDs, it stays the recounted total."""
    info = node_with(capacity, ledger, {}, {})
    for kind, uid, request in events:
        if kind == "add":
            info.add_pod(pod(uid, request, "n1"), None)
        elif kind == "remove":
            info.remove_pod(uid, None)
        elif kind == "assume":
            info.assume(pod(uid, request), None)
        elif kind == "forget":
            info.forget(uid, None)
        else:
            assert info.bandwidth is not None
            reservations = dict(info.bandwidth.reservations)
            if uid in reservations:
                del reservations[uid]
            else:
                reservations[uid] = Reservation(uid, uid, "ns", request)
            info.set_bandwidth(NodeBandwidth("n1", "n1", capacity, reservations))
        assert info.bandwidth_used == charged(info)
        free = tuple(capacity.on(axis) - charged(info).on(axis) for axis in AXES)
        assert info.free_bandwidth == free
