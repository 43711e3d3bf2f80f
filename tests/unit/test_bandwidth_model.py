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


def _entry(uid: str, up: int, down: int, link_local: bool = False) -> dict[str, object]:
    return {
        "podUID": uid,
        "podName": "peer-0",
        "podNamespace": "lab",
        "linkLocal": link_local,
        "bandwidth": {"ulMbps": up, "dlMbps": down},
    }


def test_a_second_entry_for_a_pod_is_charged_the_larger_request_on_each_axis() -> None:
    # The list is atomic: the apiserver no longer refuses two entries with one podUID.
    obj = new_bandwidth_object("node-1", CAPACITY)
    obj["spec"]["reservations"] = [
        _entry("u1", 300, 50, link_local=True),
        _entry("u2", 100, 100),
        _entry("u1", 200, 400),
    ]
    ledger = parse_bandwidth(obj)
    assert sorted(ledger.reservations) == ["u1", "u2"]
    held = ledger.reservations["u1"].request
    assert (held.ul_mbps, held.dl_mbps, held.link_local) == (300, 400, False)
    assert ledger.reserved() == Usage(LinkBudget(400, 500), LinkBudget(400, 500))
    assert ledger.problems == ("duplicate reservation for pod UID u1",)


def test_the_ledger_is_one_atomic_value_in_the_crd() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "bandwidths.networking.vaclab.org.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    reservations = schema["properties"]["spec"]["properties"]["reservations"]
    assert reservations["x-kubernetes-list-type"] == "atomic"
    assert "x-kubernetes-list-map-keys" not in reservations
