"""The Bandwidth CRD as the real apiserver enforces it."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from bandwidth.model import Reservation, parse_bandwidth, reservations_patch
from localcluster import rawapi
from localcluster.crds import apply_crd, load_crds, wait_for_crd

pytestmark = pytest.mark.controlplane

JSON_PATCH = "application/json-patch+json"
GROUP, VERSION, PLURAL = "networking.vaclab.org", "v1", "bandwidths"
CRD_NAME = f"{PLURAL}.{GROUP}"

SEED_SAMPLE = """\
apiVersion: networking.vaclab.org/v1
kind: Bandwidth
metadata:
  name: node-name
spec:
  capacity:
    local:
      ulMbps: 20000  # OVS uplink capacity in Mbps
      dlMbps: 20000  # OVS downlink capacity in Mbps
    network:
      ulMbps: 1000   # Physical NIC egress capacity
      dlMbps: 1000   # Physical NIC ingress capacity
  reservations: []   # List of pod bandwidth reservations
"""


@pytest.fixture
def custom(api_client: ApiClient) -> CustomObjectsApi:
    return CustomObjectsApi(api_client)


@pytest.fixture
def bandwidth_names(custom: CustomObjectsApi) -> Iterator[list[str]]:
    """Names of cluster-scoped Bandwidth objects to delete after the test."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def sample(name: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(SEED_SAMPLE)
    if name is not None:
        body["metadata"]["name"] = name
    return body


def obj(value: object) -> dict[str, Any]:
    """The CustomObjectsApi returns plain dicts typed as ``object``."""
    assert isinstance(value, dict)
    return value


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(custom: CustomObjectsApi, names: list[str], body: dict[str, Any]) -> dict[str, Any]:
    names.append(body["metadata"]["name"])
    return obj(custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, body))


def rejected(custom: CustomObjectsApi, body: dict[str, Any]) -> dict[str, Any]:
    """Create ``body``, expect 422 and return the apiserver's Status."""
    with pytest.raises(ApiException) as info:
        custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
    assert info.value.status == 422, info.value.body
    status: dict[str, Any] = json.loads(info.value.body or "{}")
    assert status["reason"] == "Invalid"
    return status


def test_crd_is_established_and_served(api_client: ApiClient) -> None:
    crd = rawapi.request_ok(
        api_client, "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}"
    )
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd["spec"]["scope"] == "Cluster"
    status, body = rawapi.request(api_client, "GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}")
    assert status == 200, body
    assert body["kind"] == "BandwidthList"


def test_seed_sample_applies_unchanged(
    custom: CustomObjectsApi, bandwidth_names: list[str]
) -> None:
    created = create(custom, bandwidth_names, sample())
    assert created["metadata"]["name"] == "node-name"
    stored = obj(custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "node-name"))
    assert stored["spec"] == sample()["spec"]
    assert stored["metadata"]["generation"] == 1


def test_negative_mbps_is_rejected(custom: CustomObjectsApi) -> None:
    body = sample(unique("neg"))
    body["spec"]["capacity"]["network"]["ulMbps"] = -1
    status = rejected(custom, body)
    assert "spec.capacity.network.ulMbps" in status["message"]
    assert "should be greater than or equal to 0" in status["message"]
    assert status["details"]["causes"][0]["field"] == "spec.capacity.network.ulMbps"


def test_missing_capacity_is_rejected(custom: CustomObjectsApi) -> None:
    body = sample(unique("nocap"))
    del body["spec"]["capacity"]
    status = rejected(custom, body)
    assert "spec.capacity: Required value" in status["message"]


def test_missing_spec_is_rejected(custom: CustomObjectsApi) -> None:
    body = sample(unique("nospec"))
    del body["spec"]
    status = rejected(custom, body)
    assert "spec: Required value" in status["message"]


def test_unknown_fields_are_pruned(custom: CustomObjectsApi, bandwidth_names: list[str]) -> None:
    body = sample(unique("prune"))
    body["spec"]["colour"] = "blue"
    body["spec"]["capacity"]["local"]["burstMbps"] = 5
    body["topLevelJunk"] = {"a": 1}
    create(custom, bandwidth_names, body)
    stored = obj(custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, body["metadata"]["name"]))
    assert "colour" not in stored["spec"]
    assert "burstMbps" not in stored["spec"]["capacity"]["local"]
    assert "topLevelJunk" not in stored
    assert stored["spec"] == sample()["spec"]


def reservation(pod_uid: str, pod_name: str = "p") -> dict[str, Any]:
    return {
        "podName": pod_name,
        "podNamespace": "default",
        "podUID": pod_uid,
        "bandwidth": {"ulMbps": 10, "dlMbps": 20},
    }


def test_a_second_entry_for_a_pod_is_stored_and_read_as_one_larger_entry(
    custom: CustomObjectsApi, bandwidth_names: list[str]
) -> None:
    # The list is atomic: the apiserver keeps a duplicate podUID; the readers charge the larger.
    body = sample(unique("dup"))
    body["spec"]["reservations"] = [reservation("uid-1", "a"), reservation("uid-1", "b")]
    body["spec"]["reservations"][1]["bandwidth"] = {"ulMbps": 5, "dlMbps": 70}
    created = create(custom, bandwidth_names, body)
    assert len(created["spec"]["reservations"]) == 2
    ledger = parse_bandwidth(created)
    assert list(ledger.reservations) == ["uid-1"]
    request = ledger.reservations["uid-1"].request
    assert (request.ul_mbps, request.dl_mbps) == (10, 70)
    assert ledger.problems == ("duplicate reservation for pod UID uid-1",)


def _renamed(crd: dict[str, Any], group: str) -> dict[str, Any]:
    """``crd`` served under another API group: a sandbox that the session's CRD never sees."""
    copied = copy.deepcopy(crd)
    plural = copied["spec"]["names"]["plural"]
    copied["metadata"]["name"] = f"{plural}.{group}"
    copied["spec"]["group"] = group
    return copied


def _add_as_the_scheduler(
    api_client: ApiClient, path: str, stored: dict[str, Any], added: Reservation
) -> dict[str, Any]:
    """The scheduler's write of one more reservation: the whole list, guarded by the UID and
    the generation of the ledger as it is read now."""
    ledger = parse_bandwidth(rawapi.request_ok(api_client, "GET", path))
    written: dict[str, Any] = rawapi.request_ok(
        api_client,
        "PATCH",
        path,
        body=[
            {"op": "test", "path": "/metadata/uid", "value": stored["metadata"]["uid"]},
            {"op": "test", "path": "/metadata/generation", "value": ledger.generation},
            *reservations_patch([*ledger.reservations.values(), added]),
        ],
        content_type=JSON_PATCH,
    )
    return written


def test_upgrading_from_the_map_keyed_ledger_keeps_stored_objects_writable(
    api_client: ApiClient,
) -> None:
    """An operator applies the new CRD (``spec.reservations`` atomic) over the one before it
    (a map keyed by ``podUID``) with Bandwidth objects stored: they stay readable, and the
    scheduler's guarded write of the whole list goes through."""
    group = f"upgrade-{uuid.uuid4().hex[:6]}.vaclab.org"
    (current,) = load_crds()
    new = _renamed(current, group)
    old = copy.deepcopy(new)
    ledger_schema = old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    listed = ledger_schema["properties"]["spec"]["properties"]["reservations"]
    listed["x-kubernetes-list-type"] = "map"
    listed["x-kubernetes-list-map-keys"] = ["podUID"]
    objects = f"/apis/{group}/{VERSION}/{PLURAL}"
    try:
        apply_crd(api_client, old)
        wait_for_crd(api_client, old)
        body = sample("node-1")
        body["apiVersion"] = f"{group}/{VERSION}"
        body["spec"]["reservations"] = [reservation("uid-1", "a"), reservation("uid-2", "b")]
        stored = rawapi.request_ok(api_client, "POST", objects, body=body)

        apply_crd(api_client, new)
        wait_for_crd(api_client, new)
        ledger = parse_bandwidth(rawapi.request_ok(api_client, "GET", f"{objects}/node-1"))
        assert sorted(ledger.reservations) == ["uid-1", "uid-2"]
        third = replace(ledger.reservations["uid-1"], pod_uid="uid-3", pod_name="c")
        written = _add_as_the_scheduler(api_client, f"{objects}/node-1", stored, third)
        assert sorted(parse_bandwidth(written).reservations) == ["uid-1", "uid-2", "uid-3"]
        # The new schema is served once the apiserver has taken it: a second entry for a pod,
        # refused by the map, is then kept.
        twice = [{"op": "add", "path": "/spec/reservations/-", "value": reservation("uid-1")}]
        deadline = time.monotonic() + 30
        while True:
            code, answer = rawapi.request(
                api_client, "PATCH", f"{objects}/node-1", body=twice, content_type=JSON_PATCH
            )
            if code == 200 or time.monotonic() > deadline:
                break
            assert "Duplicate value" in json.dumps(answer), answer
            time.sleep(0.2)
        assert code == 200, answer
        assert len(answer["spec"]["reservations"]) == 4
    finally:
        rawapi.request(
            api_client,
            "DELETE",
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{new['metadata']['name']}",
        )


def _status_written(at: str, *, over: bool) -> dict[str, Any]:
    """A status as the accounting controller writes it (whole, by merge patch)."""
    totals = {"local": {"ulMbps": 1, "dlMbps": 2}, "network": {"ulMbps": 3, "dlMbps": 4}}

    def condition(kind: str, status: bool) -> dict[str, Any]:
        return {
            "type": kind,
            "status": str(status),
            "lastTransitionTime": at,
            "reason": "OverCapacity" if over else "WithinCapacity",
            "message": "usage beyond capacity" if over else "usage within capacity",
        }

    return {
        "state": "Oversubscribed" if over else "Ready",
        "used": totals,
        "remaining": totals,
        "conditions": [condition("Ready", not over), condition("Oversubscribed", over)],
        "updatedAt": at,
    }


def _status_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """What the status writer's managed-fields entry says it owns."""
    (entry,) = [m for m in obj["metadata"]["managedFields"] if m.get("subresource") == "status"]
    owned: dict[str, Any] = entry["fieldsV1"]["f:status"]
    return owned


def test_the_status_is_owned_as_whole_structs_and_lists(
    custom: CustomObjectsApi, bandwidth_names: list[str]
) -> None:
    """Each of the status's structs and lists is one managed-fields entry, not one per leaf
    or per condition type: every write of the object, each reservation too, re-computes
    them (the CRD's comment on ``status``)."""
    name = unique("owned")
    create(custom, bandwidth_names, sample(name))
    status = {"status": _status_written("2026-01-01T00:00:00Z", over=False)}
    written = obj(custom.patch_cluster_custom_object_status(GROUP, VERSION, PLURAL, name, status))
    owned = _status_fields(written)
    for field in ("f:used", "f:remaining", "f:conditions"):
        assert owned[field] == {}, owned
    # Merge patches replace a list whatever its type, and merge maps whatever theirs: the
    # writer's view of the status is unchanged.
    half = {"status": {"used": {"network": {"ulMbps": 9}}}}
    patched = obj(custom.patch_cluster_custom_object_status(GROUP, VERSION, PLURAL, name, half))
    assert patched["status"]["used"] == {
        "local": {"ulMbps": 1, "dlMbps": 2},
        "network": {"ulMbps": 9, "dlMbps": 4},
    }


def test_upgrading_from_the_per_leaf_status_keeps_stored_objects_writable(
    api_client: ApiClient,
) -> None:
    """An operator applies the new CRD (status structs and conditions atomic) over the one
    before it (``conditions`` a map keyed by ``type``, structs per leaf) with Bandwidth
    objects stored, their status written: the status and the ledger are written as before,
    and the status's managed fields become whole once the new schema is served."""
    group = f"upgrade-{uuid.uuid4().hex[:6]}.vaclab.org"
    (current,) = load_crds()
    new = _renamed(current, group)
    old = copy.deepcopy(new)
    status_schema = old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    for struct in ("used", "remaining", "draUsed"):
        status_schema["properties"][struct].pop("x-kubernetes-map-type", None)
    status_schema["properties"]["conditions"]["x-kubernetes-list-type"] = "map"
    status_schema["properties"]["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    objects = f"/apis/{group}/{VERSION}/{PLURAL}"
    merge = "application/merge-patch+json"
    try:
        apply_crd(api_client, old)
        wait_for_crd(api_client, old)
        body = sample("node-1")
        body["apiVersion"] = f"{group}/{VERSION}"
        body["spec"]["reservations"] = [reservation("uid-1", "a")]
        stored = rawapi.request_ok(api_client, "POST", objects, body=body)
        before = rawapi.request_ok(
            api_client,
            "PATCH",
            f"{objects}/node-1/status",
            body={"status": _status_written("2026-01-01T00:00:00Z", over=False)},
            content_type=merge,
        )
        assert 'k:{"type":"Ready"}' in _status_fields(before)["f:conditions"]

        apply_crd(api_client, new)
        wait_for_crd(api_client, new)
        deadline = time.monotonic() + 30
        for second in range(1000):
            at = f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}Z"
            after = rawapi.request_ok(
                api_client,
                "PATCH",
                f"{objects}/node-1/status",
                body={"status": _status_written(at, over=second % 2 == 0)},
                content_type=merge,
            )
            assert after["status"] == _status_written(at, over=second % 2 == 0)
            if _status_fields(after)["f:conditions"] == {} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert _status_fields(after)["f:conditions"] == {}, after["metadata"]["managedFields"]
        assert _status_fields(after)["f:used"] == {}

        first = parse_bandwidth(after).reservations["uid-1"]
        second_pod = replace(first, pod_uid="uid-2", pod_name="b")
        written = _add_as_the_scheduler(api_client, f"{objects}/node-1", stored, second_pod)
        assert sorted(parse_bandwidth(written).reservations) == ["uid-1", "uid-2"]
        assert written["status"] == after["status"]
    finally:
        rawapi.request(
            api_client,
            "DELETE",
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{new['metadata']['name']}",
        )


def test_reservation_defaults_link_local_false(
    custom: CustomObjectsApi, bandwidth_names: list[str]
) -> None:
    body = sample(unique("dflt"))
    body["spec"]["reservations"] = [reservation("uid-1"), reservation("uid-2")]
    created = create(custom, bandwidth_names, body)
    assert [r["linkLocal"] for r in created["spec"]["reservations"]] == [False, False]


def test_status_subresource_is_separate_from_spec(
    custom: CustomObjectsApi, bandwidth_names: list[str]
) -> None:
    name = unique("status")
    created = create(custom, bandwidth_names, sample(name))
    assert created["metadata"]["generation"] == 1
    assert "status" not in created

    status = {"state": "Ready", "used": {"network": {"ulMbps": 10, "dlMbps": 20}}}
    after_status = obj(
        custom.patch_cluster_custom_object_status(GROUP, VERSION, PLURAL, name, {"status": status})
    )
    assert after_status["metadata"]["generation"] == 1, "a status write bumped generation"
    assert after_status["status"] == status

    # A spec write through the main resource bumps generation and leaves status alone,
    # even when the body carries a different status.
    desired = copy.deepcopy(after_status)
    desired["spec"]["capacity"]["network"]["ulMbps"] = 2000
    desired["status"] = {"state": "Oversubscribed"}
    after_spec = obj(custom.replace_cluster_custom_object(GROUP, VERSION, PLURAL, name, desired))
    assert after_spec["metadata"]["generation"] == 2
    assert after_spec["spec"]["capacity"]["network"]["ulMbps"] == 2000
    assert after_spec["status"] == status

    # And a status write ignores spec changes.
    sneaky = copy.deepcopy(after_spec)
    sneaky["spec"]["capacity"]["network"]["ulMbps"] = 1
    sneaky["status"] = {"state": "Ready"}
    after_sneaky = obj(
        custom.replace_cluster_custom_object_status(GROUP, VERSION, PLURAL, name, sneaky)
    )
    assert after_sneaky["spec"]["capacity"]["network"]["ulMbps"] == 2000
    assert after_sneaky["metadata"]["generation"] == 2
    assert after_sneaky["status"] == {"state": "Ready"}


def test_install_crds_is_idempotent(api_client: ApiClient) -> None:
    from localcluster import install_crds

    assert install_crds(api_client) == [CRD_NAME]
