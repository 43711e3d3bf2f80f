"""What DRA claims hold per node (``bandwidth.dra``), from claims shaped as kube-scheduler v1.37
writes them (``status.allocation.devices.results[].consumedCapacity``) and slices as a driver
publishes them."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bandwidth.budget import LinkBudget, Usage
from bandwidth.dra import (
    NO_HOLDING,
    DraHoldings,
    DraSharing,
    holding_from_status,
    holding_status,
    holdings_of,
    mbps_of_quantity,
    slim_claim,
    slim_slice,
)

DRIVER = "bw.example.org"
SHARING = DraSharing(driver=DRIVER)

JSON = dict[str, Any]


def a_slice(
    node: str,
    *,
    nic: str = "1000M",
    vswitch: str = "20G",
    generation: int = 1,
    name: str = "",
    pool: str = "",
    driver: str = DRIVER,
    shared: bool = True,
) -> JSON:
    def device(device_name: str, value: str) -> JSON:
        return {
            "name": device_name,
            "allowMultipleAllocations": shared,
            "capacity": {"uplink": {"value": value}, "downlink": {"value": value}},
        }

    return {
        "metadata": {"name": name or f"{node}-bw"},
        "spec": {
            "driver": driver,
            "nodeName": node,
            "pool": {"name": pool or node, "generation": generation, "resourceSliceCount": 1},
            "devices": [device("nic", nic), device("vswitch", vswitch), device("gpu", "1")],
        },
    }


def a_result(
    pool: str,
    device: str,
    up: str | None,
    down: str | None,
    *,
    driver: str = DRIVER,
    admin: bool = False,
) -> JSON:
    result: JSON = {"request": device, "driver": driver, "pool": pool, "device": device}
    consumed = {k: v for k, v in (("uplink", up), ("downlink", down)) if v is not None}
    if consumed:
        result["consumedCapacity"] = consumed
    if admin:
        result["adminAccess"] = True
    return result


def a_claim(
    name: str,
    results: list[JSON] | None,
    *,
    namespace: str = "lab",
    pods: tuple[str, ...] = (),
    selector_node: str = "",
) -> JSON:
    claim: JSON = {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"}}
    if results is None:
        return claim
    allocation: JSON = {"devices": {"results": results}}
    if selector_node:
        allocation["nodeSelector"] = {
            "nodeSelectorTerms": [
                {
                    "matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": [selector_node]}
                    ]
                }
            ]
        }
    claim["status"] = {
        "allocation": allocation,
        "reservedFor": [{"resource": "pods", "name": p, "uid": f"pod-{p}"} for p in pods],
    }
    return claim


def usage(net_up: int = 0, net_down: int = 0, local_up: int = 0, local_down: int = 0) -> Usage:
    return Usage(local=LinkBudget(local_up, local_down), network=LinkBudget(net_up, net_down))


def test_nic_charges_the_network_and_the_vswitch_the_local_datapath() -> None:
    holdings = DraHoldings(SHARING)
    holdings.put_slice(a_slice("n1"))
    changed = holdings.put_claim(
        a_claim(
            "web-0-bw",
            [a_result("n1", "nic", "200M", "1G"), a_result("n1", "vswitch", "200M", "1G")],
            pods=("web-0",),
        )
    )
    assert changed == {"n1"}
    held = holdings.holding("n1")
    assert held.usage == usage(200, 1000, 200, 1000)
    assert [c.key for c in held.claims] == ["lab/web-0-bw"]
    assert held.pod_uids == {"pod-web-0"}


def test_claims_on_a_node_add_up_and_a_link_local_claim_spares_the_nic() -> None:
    holdings = DraHoldings(SHARING)
    holdings.put_slice(a_slice("n1"))
    holdings.put_claim(a_claim("a", [a_result("n1", "nic", "100M", "50M")]))
    holdings.put_claim(a_claim("b", [a_result("n1", "vswitch", "300M", "300M")]))
    assert holdings.holding("n1").usage == usage(100, 50, 300, 300)
    assert holdings.holding("n2") is NO_HOLDING


def test_consumed_bits_are_rounded_up_to_whole_mbps_per_result() -> None:
    assert mbps_of_quantity("1500k") == 2
    assert mbps_of_quantity("1Gi") == 1074
    assert mbps_of_quantity("0") == 0
    assert mbps_of_quantity("fast") is None
    assert mbps_of_quantity("-5M") is None
    holdings = DraHoldings(SHARING)
    holdings.put_slice(a_slice("n1"))
    holdings.put_claim(a_claim("a", [a_result("n1", "nic", "1500k", "1")]))
    holdings.put_claim(a_claim("b", [a_result("n1", "nic", "1500k", "1")]))
    assert holdings.holding("n1").usage == usage(4, 2)


def test_unallocated_claims_other_drivers_devices_and_admin_access_hold_nothing() -> None:
    holdings = DraHoldings(SHARING)
    holdings.put_slice(a_slice("n1"))
    holdings.put_slice(a_slice("n1", driver="gpu.example.org", name="gpu"))
    assert holdings.put_claim(a_claim("pending", None)) == set()
    assert holdings.put_claim(a_claim("gpu", [a_result("n1", "gpu", "1", "1")])) == set()
    other = [a_result("n1", "nic", "900M", "900M", driver="gpu.example.org")]
    assert holdings.put_claim(a_claim("other-driver", other)) == set()
    admin = [a_result("n1", "nic", "900M", "900M", admin=True)]
    assert holdings.put_claim(a_claim("monitor", admin)) == set()
    assert holdings.holding("n1") is NO_HOLDING


def test_a_device_allocated_whole_holds_its_whole_capacity() -> None:
    holdings = DraHoldings(SHARING)
    holdings.put_slice(a_slice("n1", nic="2500M", shared=False))
    holdings.put_claim(a_claim("exclusive", [a_result("n1", "nic", None, None)]))
    assert holdings.holding("n1").usage == usage(2500, 2500)


def test_unreadable_consumed_amount_counts_as_the_whole_device() -> None:
    holdings = DraHoldings(SHARING)
    holdings.put_slice(a_slice("n1"))
    holdings.put_claim(a_claim("odd", [a_result("n1", "nic", "lots", "10M")]))
    assert holdings.holding("n1").usage == usage(1000, 10)


def test_capacity_names_may_be_qualified_on_either_side() -> None:
    custom = DraSharing(
        driver=DRIVER,
        nic_device="eth0",
        vswitch_device="ovs",
        uplink_capacity=f"{DRIVER}/egress",
        downlink_capacity="ingress",
    )
    claim = a_claim(
        "a",
        [
            {
                "request": "net",
                "driver": DRIVER,
                "pool": "n1",
                "device": "eth0",
                "consumedCapacity": {"egress": "10M", f"{DRIVER}/ingress": "20M"},
            },
            {
                "request": "sw",
                "driver": DRIVER,
                "pool": "n1",
                "device": "ovs",
                "consumedCapacity": {"egress": "30M", "ingress": "40M"},
            },
        ],
        selector_node="n1",
    )
    assert holdings_of([claim], [], custom)["n1"].usage == usage(10, 20, 30, 40)


def test_the_node_comes_from_the_slice_or_the_device_under_per_device_selection() -> None:
    per_device = a_slice("ignored", pool="fabric")
    per_device["spec"].pop("nodeName")
    per_device["spec"]["perDeviceNodeSelection"] = True
    for device in per_device["spec"]["devices"]:
        device["nodeName"] = "n7"
    claim = a_claim("a", [a_result("fabric", "nic", "10M", "10M")], selector_node="elsewhere")
    assert set(holdings_of([claim], [per_device], SHARING)) == {"n7"}


def test_a_claim_no_slice_locates_waits_for_one_or_uses_a_single_node_selector() -> None:
    holdings = DraHoldings(SHARING)
    assert holdings.put_claim(a_claim("lost", [a_result("n1", "nic", "10M", "10M")])) == set()
    assert holdings.unlocated() == ["lab/lost"]
    assert holdings.put_slice(a_slice("n1")) == {"n1"}
    assert holdings.holding("n1").usage == usage(10, 10)
    assert holdings.unlocated() == []
    selected = a_claim("sel", [a_result("gone-pool", "nic", "5M", "5M")], selector_node="n2")
    assert holdings.put_claim(selected) == {"n2"}


def test_only_the_newest_generation_of_a_pool_places_its_devices() -> None:
    holdings = DraHoldings(SHARING)
    holdings.put_slice(a_slice("n1", pool="p", name="old", generation=1))
    holdings.put_claim(a_claim("a", [a_result("p", "nic", "10M", "10M")]))
    assert holdings.nodes() == {"n1"}
    # The driver republished the pool, now on n2: the claim moves with the device.
    assert holdings.put_slice(a_slice("n2", pool="p", name="new", generation=2)) == {"n1", "n2"}
    assert holdings.nodes() == {"n2"}
    assert holdings.remove_slice(a_slice("n2", pool="p", name="new", generation=2)) == {"n1", "n2"}
    assert holdings.nodes() == {"n1"}


def test_deallocation_and_deletion_free_the_node() -> None:
    holdings = DraHoldings(SHARING)
    holdings.put_slice(a_slice("n1"))
    holdings.put_claim(a_claim("a", [a_result("n1", "nic", "10M", "10M")]))
    holdings.put_claim(a_claim("b", [a_result("n1", "nic", "20M", "20M")]))
    assert holdings.put_claim(a_claim("a", None)) == {"n1"}
    assert holdings.holding("n1").usage == usage(20, 20)
    assert holdings.remove_claim(a_claim("b", None)) == {"n1"}
    assert holdings.holding("n1") is NO_HOLDING
    assert holdings.remove_claim(a_claim("b", None)) == set()


def test_an_unchanged_claim_changes_no_node() -> None:
    holdings = DraHoldings(SHARING)
    holdings.put_slice(a_slice("n1"))
    claim = a_claim("a", [a_result("n1", "nic", "10M", "10M")], pods=("p",))
    assert holdings.put_claim(claim) == {"n1"}
    assert holdings.put_claim(claim) == set()


def test_slim_copies_count_the_same_as_the_objects() -> None:
    slices = [a_slice("n1"), a_slice("n2", nic="10G", shared=False)]
    claims = [
        a_claim("a", [a_result("n1", "nic", "10M", "20M"), a_result("n1", "vswitch", "1", "2")]),
        a_claim("b", [a_result("n2", "nic", None, None)], pods=("x", "y")),
        a_claim("c", [a_result("n1", "nic", "5M", "5M", driver="other.org")]),
        a_claim("d", None),
    ]
    full = holdings_of(claims, slices, SHARING)
    slim = holdings_of(
        [slim_claim(c, SHARING) for c in claims], [slim_slice(s, SHARING) for s in slices], SHARING
    )
    assert slim == full
    assert full["n2"].usage == usage(10000, 10000)
    assert "gpu" not in str(slim_slice(slices[0], SHARING))


# Incremental counting equals counting from scratch, whatever the order of events ---------------

NODES = ("n1", "n2", "n3")
AMOUNTS = ("0", "10M", "250M", "1G", "1500k")


@st.composite
def claim_objects(draw: st.DrawFn) -> JSON:
    name = draw(st.sampled_from(("a", "b", "c", "d")))
    if draw(st.booleans()):
        return a_claim(name, None)
    results = [
        a_result(
            draw(st.sampled_from((*NODES, "pool-x"))),
            draw(st.sampled_from(("nic", "vswitch", "gpu"))),
            draw(st.one_of(st.none(), st.sampled_from(AMOUNTS))),
            draw(st.one_of(st.none(), st.sampled_from(AMOUNTS))),
        )
        for _ in range(draw(st.integers(1, 3)))
    ]
    selector = draw(st.sampled_from(("", *NODES)))
    return a_claim(name, results, selector_node=selector)


@st.composite
def slice_objects(draw: st.DrawFn) -> JSON:
    pool = draw(st.sampled_from((*NODES, "pool-x")))
    node = draw(st.sampled_from(NODES))
    return a_slice(
        node,
        pool=pool,
        name=f"{pool}-{draw(st.integers(0, 1))}",
        generation=draw(st.integers(1, 2)),
        nic=draw(st.sampled_from(("1000M", "10G"))),
        shared=draw(st.booleans()),
    )


events = st.lists(
    st.tuples(st.sampled_from(("put", "remove")), st.one_of(claim_objects(), slice_objects())),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_incremental_holdings_equal_a_fresh_count_of_the_final_objects(
    steps: list[tuple[str, JSON]],
) -> None:
    holdings = DraHoldings(SHARING)
    claims: dict[str, JSON] = {}
    slices: dict[str, JSON] = {}
    reported: set[str] = set()
    before = {node: holdings.holding(node) for node in (*NODES, "pool-x")}
    for action, obj in steps:
        is_slice = "spec" in obj
        store = slices if is_slice else claims
        name = obj["metadata"]["name"]
        if action == "put":
            store[name] = obj
            reported |= holdings.put_slice(obj) if is_slice else holdings.put_claim(obj)
        else:
            store.pop(name, None)
            reported |= holdings.remove_slice(obj) if is_slice else holdings.remove_claim(obj)
    fresh = holdings_of(claims.values(), slices.values(), SHARING)
    assert {node: holdings.holding(node) for node in fresh} == fresh
    assert holdings.nodes() == set(fresh)
    # Every node whose holding differs from the start was reported as changed.
    for node in (*NODES, "pool-x"):
        if holdings.holding(node) != before[node]:
            assert node in reported


def test_a_holding_written_into_a_status_reads_back_and_odd_values_read_as_zero() -> None:
    holdings = DraHoldings(SHARING)
    holdings.put_slice(a_slice("n1"))
    holdings.put_claim(a_claim("a", [a_result("n1", "nic", "10M", "20M")], pods=("p1", "p2")))
    holdings.put_claim(a_claim("b", [a_result("n1", "vswitch", "5M", "5M")]))
    held = holdings.holding("n1")
    assert holding_from_status(holding_status(held)) == held
    assert holding_from_status({}) is None
    assert holding_from_status({"draUsed": {}}) == NO_HOLDING
    odd = {"draUsed": {"network": {"ulMbps": "lots", "dlMbps": -4}}, "draClaims": ["x", {}]}
    read = holding_from_status(odd)
    assert read is not None and read.usage == Usage() and len(read.claims) == 1
