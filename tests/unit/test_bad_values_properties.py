"""Bad input never crashes and never passes for a number: it becomes a clear error.

- pod annotations of any text: a request within bounds, or ``InvalidBandwidthAnnotation``
  naming the key and the value (the scheduler's pod reader keeps it as the pod's ``invalid``);
- node capacity labels and annotations of any text: a capacity, or ``CapacityError`` naming
  the node, the key and the value;
- a Bandwidth object edited into any shape inside ``spec``: a typed view, with the entries it
  cannot read listed in ``problems``, or ``MalformedBandwidth`` naming the capacity field.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from accounting.capacity import CAPACITY_KEYS, CapacityError, node_capacity
from bandwidth.model import MalformedBandwidth, parse_bandwidth
from bandwidth.quantity import MAX_REQUEST_MBPS
from bandwidth.request import (
    DEFAULT_EGRESS_KEY,
    DEFAULT_INGRESS_KEY,
    DEFAULT_LINK_LOCAL_KEY,
    InvalidBandwidthAnnotation,
    RequestPolicy,
    request_from_annotations,
)
from scheduler.podfacts import read_pod

KEYS = (DEFAULT_EGRESS_KEY, DEFAULT_INGRESS_KEY, DEFAULT_LINK_LOCAL_KEY)
FULL_WIDTH = "\uff11\uff10\uff10M"  # "100M" in full-width digits

values = st.one_of(
    st.text(max_size=24),
    st.sampled_from(
        [
            "100M",
            "1G",
            "1Gi",
            "999999999G",
            "-5M",
            "1e400",
            "1e1000006",
            "1e-1000006",
            "-1e1000006M",
            "0x10",
            "NaN",
            "1 G",
            "100Mbps",
            FULL_WIDTH,
        ]
    ),
    st.from_regex(r"[0-9]{1,12}(\.[0-9]{1,4})?[kMGTPE]?i?", fullmatch=True),
    st.from_regex(r"-?[0-9]{1,3}[eE][+-]?[0-9]{1,10}[kMGTPE]?i?", fullmatch=True),
)
quantities = st.one_of(
    values, st.sampled_from(["1e1000006", "10e1000005", "99999999999999999999Ei", "Infinity"])
)
pod_annotations = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), values, max_size=4)


@given(pod_annotations)
def test_annotations_read_as_a_bounded_request_or_a_named_error(notes: dict[str, str]) -> None:
    try:
        request = request_from_annotations(notes, RequestPolicy())
    except InvalidBandwidthAnnotation as error:
        assert error.key in KEYS and notes[error.key] == error.value
        assert error.key in str(error) and error.reason in str(error)
        return
    assert 0 <= request.ul_mbps <= MAX_REQUEST_MBPS
    assert 0 <= request.dl_mbps <= MAX_REQUEST_MBPS


@given(pod_annotations, st.text(min_size=1, max_size=253), quantities, quantities)
def test_the_scheduler_reads_any_pod_without_raising(
    notes: dict[str, str], name: str, cpu: str, memory: str
) -> None:
    requests = {"cpu": cpu, "memory": memory}
    pod = {
        "metadata": {"name": name, "namespace": "ns", "uid": "u", "annotations": notes},
        "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]},
    }
    facts = read_pod(pod, RequestPolicy())
    try:
        request_from_annotations(notes, RequestPolicy())
    except InvalidBandwidthAnnotation as error:
        assert facts.invalid == str(error) and facts.bandwidth.is_zero()


capacity_values = st.dictionaries(st.sampled_from(CAPACITY_KEYS), quantities, max_size=4)


@given(capacity_values, capacity_values)
def test_node_capacity_reads_as_numbers_or_a_named_error(
    labels: dict[str, str], annotations: dict[str, str]
) -> None:
    try:
        capacity = node_capacity("n1", labels, annotations)
    except CapacityError as error:
        assert error.node == "n1" and error.key in CAPACITY_KEYS
        assert error.value in (labels.get(error.key), annotations.get(error.key))
        return
    assert all(0 <= value <= MAX_REQUEST_MBPS for value in capacity.capacity.as_tuple())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
mbps = st.integers(0, 1_000_000_000) | json_values
budgets = st.fixed_dictionaries({}, optional={"ulMbps": mbps, "dlMbps": mbps}) | json_values
entries = (
    st.fixed_dictionaries(
        {},
        optional={
            "podUID": st.text(max_size=8) | json_values,
            "podName": st.text(max_size=8),
            "podNamespace": st.text(max_size=8),
            "bandwidth": budgets,
            "linkLocal": st.booleans() | json_values,
            "scheduler": st.text(max_size=8),
            "reservedAt": st.sampled_from(["2030-01-01T00:00:00Z", "yesterday", ""]) | json_values,
        },
    )
    | json_values
)
specs = st.fixed_dictionaries(
    {},
    optional={
        "node": st.text(max_size=8) | json_values,
        "capacity": st.fixed_dictionaries({}, optional={"local": budgets, "network": budgets})
        | json_values,
        "reservations": st.lists(entries, max_size=4) | json_values,
    },
)


@given(specs)
def test_a_hand_edited_bandwidth_reads_or_names_what_is_wrong(spec: dict[str, Any]) -> None:
    obj = {"metadata": {"name": "n1", "resourceVersion": "7", "generation": 2}, "spec": spec}
    try:
        ledger = parse_bandwidth(obj)
    except MalformedBandwidth as error:
        assert "spec.capacity" in str(error)
        return
    assert ledger.name == "n1"
    assert all(
        r.request.ul_mbps >= 0 and r.request.dl_mbps >= 0 for r in ledger.reservations.values()
    )
    raw = spec.get("reservations")
    count = len(raw) if isinstance(raw, list) else 0
    assert len(ledger.reservations) + len(ledger.problems) >= count
