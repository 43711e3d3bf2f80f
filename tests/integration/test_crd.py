"""The Bandwidth CRD as the real apiserver enforces it."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from localcluster import rawapi

pytestmark = pytest.mark.controlplane

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


def test_duplicate_reservation_pod_uids_are_rejected(custom: CustomObjectsApi) -> None:
    body = sample(unique("dup"))
    body["spec"]["reservations"] = [reservation("uid-1", "a"), reservation("uid-1", "b")]
    status = rejected(custom, body)
    assert "spec.reservations[1]: Duplicate value" in status["message"]


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
