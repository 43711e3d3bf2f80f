"""The Bandwidth object read as typed values: a node's object is the one named after it."""

from __future__ import annotations

from pathlib import Path

import yaml

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import MAX_RESERVATIONS, new_bandwidth_object, parse_bandwidth

ROOT = Path(__file__).resolve().parents[2]

CAPACITY = Usage(LinkBudget(20000, 20000), LinkBudget(1000, 1000))


def test_an_object_whose_spec_node_names_another_node_stays_its_own_and_says_so() -> None:
    obj = new_bandwidth_object("alias", CAPACITY)
    obj["spec"]["node"] = "node-1"
    ledger = parse_bandwidth(obj)
    assert (ledger.name, ledger.node) == ("alias", "alias")
    assert ledger.problems == ("spec.node 'node-1' is not the object's name 'alias'; ignored",)


def test_spec_node_may_be_left_out() -> None:
    obj = new_bandwidth_object("node-1", CAPACITY)
    del obj["spec"]["node"]
    ledger = parse_bandwidth(obj)
    assert (ledger.node, ledger.problems) == ("node-1", ())


def test_the_crd_holds_as_many_reservations_as_the_daemons_write() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "bandwidths.networking.vaclab.org.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    reservations = schema["properties"]["spec"]["properties"]["reservations"]
    assert reservations["maxItems"] == MAX_RESERVATIONS
