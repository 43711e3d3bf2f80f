"""A new node's capacity: annotation over label over default, per axis, with clear errors."""

from __future__ import annotations

import pytest

from accounting.capacity import (
    CAPACITY_KEYS,
    SEED_DEFAULT_CAPACITY,
    CapacityError,
    node_capacity,
)
from bandwidth.budget import LinkBudget, Usage

NET_UL = "bandwidth.vaclab.org/network-ul-mbps"
NET_DL = "bandwidth.vaclab.org/network-dl-mbps"
LOCAL_UL = "bandwidth.vaclab.org/local-ul-mbps"
LOCAL_DL = "bandwidth.vaclab.org/local-dl-mbps"


def test_the_four_keys() -> None:
    assert set(CAPACITY_KEYS) == {NET_UL, NET_DL, LOCAL_UL, LOCAL_DL}


def test_a_node_without_keys_gets_the_defaults() -> None:
    defaults = Usage(local=LinkBudget(7, 8), network=LinkBudget(5, 6))
    result = node_capacity("n1", {"other": "x"}, None, defaults)
    assert result.capacity == defaults
    assert result.from_node == ()


def test_seed_defaults() -> None:
    assert node_capacity("n1", None, None).capacity == Usage(
        local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000)
    )
    assert SEED_DEFAULT_CAPACITY.network == LinkBudget(1000, 1000)


def test_each_axis_is_read_on_its_own_and_the_annotation_wins() -> None:
    labels = {NET_UL: "2500", NET_DL: "3000", LOCAL_DL: "40G"}
    annotations = {NET_DL: "10G"}
    result = node_capacity("n1", labels, annotations)
    assert result.capacity == Usage(
        local=LinkBudget(SEED_DEFAULT_CAPACITY.local.ul_mbps, 40000),
        network=LinkBudget(2500, 10000),
    )
    assert set(result.from_node) == {NET_UL, NET_DL, LOCAL_DL}


@pytest.mark.parametrize(
    ("labels", "annotations", "source", "key"),
    [
        ({NET_UL: "fast"}, {}, "label", NET_UL),
        ({}, {LOCAL_UL: "-5"}, "annotation", LOCAL_UL),
        ({NET_DL: "100"}, {NET_DL: "lots"}, "annotation", NET_DL),  # a bad winner is an error
    ],
)
def test_a_bad_value_is_an_error_naming_node_source_and_key(
    labels: dict[str, str], annotations: dict[str, str], source: str, key: str
) -> None:
    with pytest.raises(CapacityError) as caught:
        node_capacity("n7", labels, annotations)
    message = str(caught.value)
    assert "n7" in message and source in message and key in message
    assert caught.value.key == key
