"""Contender D's objects (``bench.dra``, ``localcluster.dra``) and its audit from the claims."""

from __future__ import annotations

from typing import Any

from bandwidth.budget import LinkBudget, Usage
from bench.dra import audit_claims, claim_templates, dra_pod_object, template_name
from bench.workload import PodSpec, capacity_with_nic
from localcluster import dra


def spec(
    name: str, group: str = "", egress: str = "200M", ingress: str = "1G", **kw: Any
) -> PodSpec:
    return PodSpec(
        name, group, "StatefulSet" if group else "", 3 if group else 1, egress, ingress, **kw
    )


def test_one_template_per_workload_and_per_request_size_for_bare_pods() -> None:
    specs = [
        spec("web-0", "web"),
        spec("web-1", "web"),
        spec("bare-1"),
        spec("bare-2"),
        spec("bare-3", egress="10M"),
        spec("bare-4", link_local=True),
    ]
    names = [t["metadata"]["name"] for t in claim_templates(specs, "bench")]
    assert names == ["web-bandwidth", "bare-200-1000", "bare-10-1000", "bare-200-1000-link-local"]
    assert template_name(specs[1]) == "web-bandwidth"


def requests_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r["exactly"] for r in template["spec"]["spec"]["devices"]["requests"]}


def test_a_pod_asks_the_nic_and_the_vswitch_and_a_link_local_pod_the_vswitch_only() -> None:
    both, local_only = claim_templates(
        [spec("a", egress="100M", ingress="50M"), spec("b", link_local=True)], "bench"
    )
    network = requests_of(both)["network"]
    assert network["deviceClassName"] == dra.DEVICE_CLASS
    assert network["capacity"]["requests"] == {"uplink": "100M", "downlink": "50M"}
    assert '"network"' in network["selectors"][0]["cel"]["expression"]
    assert set(requests_of(both)) == {"network", "local"}
    assert set(requests_of(local_only)) == {"local"}


def test_the_pod_names_its_template_and_carries_no_other_statement_of_bandwidth() -> None:
    pod = dra_pod_object(spec("web-0", "web"), "bench")
    assert pod["spec"]["schedulerName"] == "default-scheduler"
    assert pod["spec"]["resourceClaims"] == [
        {"name": "bandwidth", "resourceClaimTemplateName": "web-bandwidth"}
    ]
    container = pod["spec"]["containers"][0]
    assert container["resources"]["claims"] == [{"name": "bandwidth"}]
    assert "annotations" not in pod["metadata"]
    assert not any("vaclab.org" in key for key in container["resources"]["requests"])


def test_a_slice_offers_the_node_s_four_axes() -> None:
    body = dra.resource_slice("n1", capacity_with_nic(2500))
    devices = {d["name"]: d for d in body["spec"]["devices"]}
    assert devices["nic"]["capacity"] == {
        "uplink": {"value": "2500M"},
        "downlink": {"value": "2500M"},
    }
    assert devices["vswitch"]["capacity"]["uplink"] == {"value": "20000M"}
    assert all(d["allowMultipleAllocations"] for d in devices.values())
    assert body["spec"]["nodeName"] == body["spec"]["pool"]["name"] == "n1"


def allocated(
    name: str, node: str, nic: tuple[str, str], vswitch: tuple[str, str]
) -> dict[str, Any]:
    def result(device: str, amounts: tuple[str, str]) -> dict[str, Any]:
        return {
            "request": device,
            "driver": dra.DRIVER,
            "pool": node,
            "device": device,
            "consumedCapacity": {"uplink": amounts[0], "downlink": amounts[1]},
        }

    return {
        "metadata": {"name": name, "namespace": "bench", "uid": name},
        "status": {
            "allocation": {"devices": {"results": [result("nic", nic), result("vswitch", vswitch)]}}
        },
    }


def test_the_audit_counts_nodes_whose_claims_consume_more_than_the_node_has() -> None:
    capacities = {"n1": capacity_with_nic(1000), "n2": capacity_with_nic(1000)}
    slices = [dra.resource_slice(node, capacity) for node, capacity in capacities.items()]
    claims = [
        allocated("a", "n1", ("600M", "10M"), ("600M", "10M")),
        allocated("b", "n1", ("600M", "10M"), ("600M", "10M")),  # n1's NIC uplink: 1200 > 1000
        allocated("c", "n2", ("1000M", "1000M"), ("1000M", "1000M")),  # full, not over
        {"metadata": {"name": "pending", "namespace": "bench", "uid": "p"}},
    ]
    audit = audit_claims(claims, slices, capacities)
    assert audit.oversubscribed_nodes == 1
    assert audit.detail["oversubscribed_by_claims"] == ["n1"]
    assert audit.detail["claims"] == 4 and audit.detail["claims_allocated"] == 3
    # The virtual switch counts too.
    tight = {"n1": Usage(local=LinkBudget(1000, 1000), network=LinkBudget(5000, 5000))}
    assert audit_claims(claims[:2], slices[:1], tight).oversubscribed_nodes == 1
