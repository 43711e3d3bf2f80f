"""Which volume a claim gets on a node: kube-scheduler's FindMatchingVolume rules."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.volumes.matching import (
    Candidates,
    find_matching_volume,
    topology_allows,
    volume_fits_node,
    zone_constraints,
    zones_allow,
)
from scheduler.volumes.objects import read_claim, read_class, read_volume
from tests.unit.scheduler.volumes.builders import pv, pvc, storage_class

N1 = {"kubernetes.io/hostname": "n1", "topology.kubernetes.io/zone": "a"}


def match(claim: dict[str, Any], *volumes: dict[str, Any], labels: dict[str, str] = N1) -> str:
    found = find_matching_volume(read_claim(claim), [read_volume(v) for v in volumes], labels)
    return found.name if found is not None else ""


def test_the_smallest_volume_big_enough_is_chosen() -> None:
    claim = pvc("c", "5Gi")
    assert match(claim, pv("big", "100Gi"), pv("small", "4Gi"), pv("fits", "6Gi")) == "fits"


def test_equal_sizes_go_to_the_name_that_sorts_first() -> None:
    assert match(pvc("c"), pv("b", "10Gi"), pv("a", "10Gi"), pv("c", "10Gi")) == "a"


@pytest.mark.parametrize(
    ("volume", "why"),
    [
        (pv("v", storage_class="other"), "another class"),
        (pv("v", phase="Released"), "not Available"),
        (pv("v", phase="Bound", claim=("ns", "someone-else")), "bound to another claim"),
        (pv("v", modes=("ReadOnlyMany",)), "lacks the access mode"),
        (pv("v", volume_mode="Block"), "another volume mode"),
        (pv("v", node="n2"), "for another node"),
        (pv("v", "1Gi"), "too small"),
    ],
)
def test_a_volume_that_does_not_fit_is_never_chosen(volume: dict[str, Any], why: str) -> None:
    assert match(pvc("c", "5Gi"), volume) == "", why


def test_a_volume_being_deleted_is_skipped() -> None:
    volume = pv("v")
    volume["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert match(pvc("c"), volume) == ""


def test_a_claim_selector_picks_by_volume_labels() -> None:
    claim = pvc("c", selector={"matchLabels": {"disk": "ssd"}})
    assert (
        match(
            claim,
            pv("hdd", "6Gi", labels={"disk": "hdd"}),
            pv("ssd", "50Gi", labels={"disk": "ssd"}),
        )
        == "ssd"
    )


def test_a_volume_prebound_to_the_claim_wins_over_a_smaller_one_whatever_its_phase() -> None:
    claim = pvc("c", "5Gi")
    prebound = pv("pre", "100Gi", phase="Pending", claim=("ns", "c"))
    assert match(claim, pv("small", "6Gi"), prebound) == "pre"


def test_a_prebound_volume_the_node_cannot_use_means_no_match_at_all() -> None:
    claim = pvc("c")
    assert match(claim, pv("other", "6Gi"), pv("pre", node="n2", claim=("ns", "c"))) == ""


def test_a_claim_ref_with_another_uid_is_another_claim() -> None:
    assert match(pvc("c"), pv("v", claim=("ns", "c"), claim_uid="old-uid")) == ""


def test_excluded_volumes_are_skipped() -> None:
    volumes = [read_volume(pv("a")), read_volume(pv("b"))]
    found = find_matching_volume(read_claim(pvc("c")), volumes, N1, excluded={"a"})
    assert found is not None and found.name == "b"


def test_node_affinity_is_matched_on_labels_only_so_match_fields_are_not_evaluated() -> None:
    def by_name(name: str, *expressions: dict[str, Any]) -> dict[str, Any]:
        field = {"key": "metadata.name", "operator": "In", "values": [name]}
        term = {"matchFields": [field], "matchExpressions": list(expressions)}
        return {"required": {"nodeSelectorTerms": [term]}}

    # kube-scheduler checks a volume against a node that has labels but no name.
    assert volume_fits_node(read_volume(pv("v", affinity=by_name("n2"))), N1)
    zone_b = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["b"]}
    assert not volume_fits_node(read_volume(pv("v", affinity=by_name("n1", zone_b))), N1)
    assert volume_fits_node(read_volume(pv("v")), N1)
    assert not volume_fits_node(read_volume(pv("v", node="n2")), N1)
    empty = {"required": {"nodeSelectorTerms": [{}]}}
    assert not volume_fits_node(read_volume(pv("v", affinity=empty)), N1)
    none = {"required": {"nodeSelectorTerms": []}}
    assert not volume_fits_node(read_volume(pv("v", affinity=none)), N1)


def test_allowed_topologies() -> None:
    zone_a = [{"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["a"]}]}]
    assert topology_allows(read_class(storage_class(topologies=zone_a)), N1)
    assert not topology_allows(read_class(storage_class(topologies=zone_a)), {"x": "y"})
    assert topology_allows(read_class(storage_class()), {})
    assert not topology_allows(read_class(storage_class(topologies=[{}])), N1)


def test_zones_of_a_volume_and_of_a_node() -> None:
    volume = read_volume(
        pv(
            "v",
            labels={
                "topology.kubernetes.io/zone": "a__b",
                "failure-domain.beta.kubernetes.io/region": "r",
            },
        )
    )
    constraints = zone_constraints(volume)
    assert zones_allow(
        constraints, {"topology.kubernetes.io/zone": "b", "topology.kubernetes.io/region": "r"}
    )
    assert not zones_allow(
        constraints, {"topology.kubernetes.io/zone": "c", "topology.kubernetes.io/region": "r"}
    )
    assert not zones_allow(constraints, {"topology.kubernetes.io/zone": "a"})
    assert zones_allow(constraints, {"kubernetes.io/hostname": "n"})  # no zone labels at all
    broken = read_volume(pv("v", labels={"topology.kubernetes.io/zone": "a__"}))
    assert zone_constraints(broken) == ()


def test_candidates_for_a_node_are_its_own_volumes_those_usable_anywhere_and_claimed_ones() -> None:
    zone_a = {
        "required": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}
                    ]
                }
            ]
        }
    }
    volumes = [
        read_volume(v)
        for v in (
            pv("mine", node="n1"),
            pv("theirs", node="n2"),
            pv("zonal", affinity=zone_a),
            pv("anywhere", affinity=None, extra_spec={"nodeAffinity": None}),
            pv("claimed", node="n2", claim=("ns", "other")),
        )
    ]
    index = Candidates.of(volumes)
    assert {v.name for v in index.for_node(N1)} == {"mine", "zonal", "anywhere", "claimed"}
    # The index changes what is looked at, never the answer.
    for claim in (pvc("c", "5Gi"), pvc("c", "50Gi"), pvc("other")):
        facts = read_claim(claim)
        assert find_matching_volume(facts, index.for_node(N1), N1) == find_matching_volume(
            facts, volumes, N1
        )


def test_a_volume_prebound_to_the_claim_on_another_node_rules_this_node_out() -> None:
    """As in kube-scheduler: the claim waits for its own volume, not any volume that fits."""
    volumes = [
        read_volume(pv("local", node="n1")),
        read_volume(pv("pre", node="n2", claim=("ns", "c"))),
    ]
    index = Candidates.of(volumes)
    assert find_matching_volume(read_claim(pvc("c")), index.for_node(N1), N1) is None
