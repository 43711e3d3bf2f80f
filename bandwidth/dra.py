"""Bandwidth that kube-scheduler gave to DRA ResourceClaims, per node. Pure: no client.

A lab may schedule some pods with kube-scheduler and DRA consumable capacity (KEP-5075): a DRA
driver publishes, per node, a ResourceSlice whose devices stand for the NIC and the virtual
switch, with ``allowMultipleAllocations: true`` and an uplink and a downlink capacity; claims
ask for a share (``capacity.requests``) and kube-scheduler writes what each allocation
consumes into ``status.allocation.devices.results[].consumedCapacity``. ``DraSharing`` names
that driver, the two devices and the two capacities; ``DraHoldings`` turns the driver's
ResourceSlices and every ResourceClaim into what the claims hold on each node, so our
scheduler can leave it alone.

How a claim is counted:

- only once ``status.allocation`` is set, and only its results of the named driver on the
  named devices; results with ``adminAccess`` consume nothing (as for kube-scheduler);
- the NIC device charges the network datapath, the virtual-switch device the local one;
  ``consumedCapacity`` of the uplink and downlink names is bits per second (a Kubernetes
  quantity, ``200M``), rounded up to whole Mbps per result; a result without a consumed
  amount for a name (a device allocated whole, ``allowMultipleAllocations`` unset) charges the
  device's whole capacity of that name;
- the node is the one the device's ResourceSlice names (``spec.nodeName``, or the device's
  ``nodeName`` under ``perDeviceNodeSelection``), from the pool's newest generation; a device
  no slice shows falls back to the allocation's node selector when it names exactly one node;
  otherwise the claim is held aside until a slice locates it;
- the pods in ``status.reservedFor`` are remembered: the claim holds their bandwidth, so a
  shaping annotation on the same pod is not charged a second time.

Capacity names are qualified names: ``uplink`` in a slice of driver ``bw.example.org`` is
``bw.example.org/uplink``; both spellings are accepted everywhere.

``holding_status`` writes a holding into a Bandwidth's status (``draUsed``, ``draClaims``) and
``holding_from_status`` reads it back, for readers without the claims (``kubectl bandwidth``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import capacity_json

JSON = dict[str, Any]

_BITS_PER_MEGABIT = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class DraSharing:
    """Which DRA driver, devices and capacities stand for a node's NIC and virtual switch."""

    driver: str
    nic_device: str = "nic"
    vswitch_device: str = "vswitch"
    uplink_capacity: str = "uplink"
    downlink_capacity: str = "downlink"

    def qualified(self, name: str) -> str:
        return name if "/" in name else f"{self.driver}/{name}"

    def describe(self) -> str:
        return (
            f"driver {self.driver}: NIC device {self.nic_device!r}, virtual switch device "
            f"{self.vswitch_device!r}, capacities {self.uplink_capacity!r} (uplink) and "
            f"{self.downlink_capacity!r} (downlink)"
        )


@dataclass(frozen=True, slots=True)
class ClaimHold:
    """What one allocated claim holds on one node."""

    namespace: str
    name: str
    uid: str
    usage: Usage
    pod_uids: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class DraHolding:
    """Everything DRA claims hold on one node."""

    claims: tuple[ClaimHold, ...] = ()
    usage: Usage = Usage()
    pod_uids: frozenset[str] = frozenset()

    @classmethod
    def of(cls, claims: Iterable[ClaimHold]) -> DraHolding:
        ordered = tuple(sorted(claims, key=lambda hold: (hold.namespace, hold.name, hold.uid)))
        return cls(
            claims=ordered,
            usage=sum((hold.usage for hold in ordered), Usage()),
            pod_uids=frozenset(uid for hold in ordered for uid in hold.pod_uids),
        )


NO_HOLDING = DraHolding()


def holding_status(holding: DraHolding) -> JSON:
    """The ``draUsed`` and ``draClaims`` fields of a Bandwidth's status."""
    return {
        "draUsed": capacity_json(holding.usage),
        "draClaims": [
            {
                "namespace": hold.namespace,
                "name": hold.name,
                "uid": hold.uid,
                "used": capacity_json(hold.usage),
                "podUIDs": sorted(hold.pod_uids),
            }
            for hold in holding.claims
        ],
    }


def _status_mbps(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _status_usage(raw: Any) -> Usage:
    def link(name: str) -> LinkBudget:
        part = _mapping(_mapping(raw).get(name))
        return LinkBudget(_status_mbps(part.get("ulMbps")), _status_mbps(part.get("dlMbps")))

    return Usage(local=link("local"), network=link("network"))


def holding_from_status(status: Mapping[str, Any] | None) -> DraHolding | None:
    """The holding an accounting controller with DRA sharing wrote; None if it wrote none.
    Read tolerantly: a value that is not a whole number of Mbps counts as zero."""
    status = status or {}
    if not isinstance(status.get("draUsed"), Mapping):
        return None
    claims = [
        ClaimHold(
            namespace=str(entry.get("namespace") or ""),
            name=str(entry.get("name") or ""),
            uid=str(entry.get("uid") or ""),
            usage=_status_usage(entry.get("used")),
            pod_uids=frozenset(str(uid) for uid in _list(entry.get("podUIDs"))),
        )
        for entry in _list(status.get("draClaims"))
        if isinstance(entry, Mapping)
    ]
    holding = DraHolding.of(claims)
    # draUsed is what the controller charged; trust it over a list a user may have trimmed.
    return DraHolding(holding.claims, _status_usage(status["draUsed"]), holding.pod_uids)


def mbps_of_quantity(value: Any) -> int | None:
    """Whole Mbps, rounded up, of a quantity in bits per second; None if it does not read."""
    try:
        bits: Decimal = parse_quantity(str(value))
    except (ValueError, InvalidOperation, TypeError):
        return None
    if not bits.is_finite() or bits < 0:
        return None
    return math.ceil(bits / _BITS_PER_MEGABIT)


# Slim copies: what a watch cache keeps of each object -----------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def slim_slice(obj: JSON, sharing: DraSharing) -> JSON:
    """The slice less everything but its pool, node and the named devices."""
    metadata = _mapping(obj.get("metadata"))
    spec = _mapping(obj.get("spec"))
    named = {sharing.nic_device, sharing.vswitch_device}
    devices = [
        {
            key: device[key]
            for key in ("name", "nodeName", "allowMultipleAllocations", "capacity")
            if key in device
        }
        for device in _list(spec.get("devices"))
        if isinstance(device, Mapping) and device.get("name") in named
    ]
    return {
        "metadata": {
            key: metadata[key] for key in ("name", "uid", "resourceVersion") if key in metadata
        },
        "spec": {
            **{
                key: spec[key]
                for key in ("driver", "pool", "nodeName", "perDeviceNodeSelection")
                if key in spec
            },
            "devices": devices,
        },
    }


def slim_claim(obj: JSON, sharing: DraSharing) -> JSON:
    """The claim less everything but its name, its allocation on the driver's devices and the
    pods it is reserved for."""
    metadata = _mapping(obj.get("metadata"))
    status = _mapping(obj.get("status"))
    slim: JSON = {
        "metadata": {
            key: metadata[key]
            for key in ("name", "namespace", "uid", "resourceVersion")
            if key in metadata
        }
    }
    allocation = status.get("allocation")
    if not isinstance(allocation, Mapping):
        return slim
    results = [
        result
        for result in _list(_mapping(allocation.get("devices")).get("results"))
        if isinstance(result, Mapping) and result.get("driver") == sharing.driver
    ]
    slim["status"] = {
        "allocation": {
            "devices": {"results": results},
            "nodeSelector": allocation.get("nodeSelector"),
        },
        "reservedFor": [
            {"resource": r.get("resource"), "uid": r.get("uid"), "name": r.get("name")}
            for r in _list(status.get("reservedFor"))
            if isinstance(r, Mapping)
        ],
    }
    return slim


# Reading slices and claims --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Device:
    """A named device as its slice shows it."""

    pool: str
    name: str
    node: str
    capacity: Mapping[str, int]
    """Qualified capacity name → whole Mbps."""
    shared: bool


@dataclass(frozen=True, slots=True)
class _Slice:
    name: str
    pool: str
    generation: int
    devices: tuple[_Device, ...]

    @classmethod
    def read(cls, obj: Mapping[str, Any], sharing: DraSharing) -> _Slice | None:
        spec = _mapping(obj.get("spec"))
        if spec.get("driver") != sharing.driver:
            return None
        pool = _mapping(spec.get("pool"))
        pool_name = str(pool.get("name") or "")
        try:
            generation = int(pool.get("generation") or 0)
        except (TypeError, ValueError):
            generation = 0
        per_device = bool(spec.get("perDeviceNodeSelection"))
        slice_node = str(spec.get("nodeName") or "")
        devices = []
        for device in _list(spec.get("devices")):
            if not isinstance(device, Mapping):
                continue
            name = str(device.get("name") or "")
            if name not in (sharing.nic_device, sharing.vswitch_device):
                continue
            capacity: dict[str, int] = {}
            for key, entry in _mapping(device.get("capacity")).items():
                mbps = mbps_of_quantity(_mapping(entry).get("value"))
                if mbps is not None:
                    capacity[sharing.qualified(str(key))] = mbps
            node = str(device.get("nodeName") or "") if per_device else slice_node
            devices.append(
                _Device(
                    pool=pool_name,
                    name=name,
                    node=node,
                    capacity=capacity,
                    shared=bool(device.get("allowMultipleAllocations")),
                )
            )
        name = str(_mapping(obj.get("metadata")).get("name") or "")
        return cls(name=name, pool=pool_name, generation=generation, devices=tuple(devices))


@dataclass(frozen=True, slots=True)
class _Result:
    pool: str
    device: str
    consumed: Mapping[str, int | None]
    """Qualified capacity name → whole Mbps (None: present but unreadable)."""


@dataclass(frozen=True, slots=True)
class _Claim:
    namespace: str
    name: str
    uid: str
    results: tuple[_Result, ...]
    selector_node: str
    pod_uids: frozenset[str]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def pools(self) -> frozenset[str]:
        return frozenset(result.pool for result in self.results)


def _single_node(selector: Any) -> str:
    """The node a node selector names when it is ``metadata.name In [one]``, else ""."""
    terms = _list(_mapping(selector).get("nodeSelectorTerms"))
    if len(terms) != 1:
        return ""
    term = _mapping(terms[0])
    fields = _list(term.get("matchFields"))
    if term.get("matchExpressions") or len(fields) != 1:
        return ""
    requirement = _mapping(fields[0])
    values = _list(requirement.get("values"))
    if (
        requirement.get("key") == "metadata.name"
        and requirement.get("operator") == "In"
        and len(values) == 1
    ):
        return str(values[0])
    return ""


def _read_claim(obj: Mapping[str, Any], sharing: DraSharing) -> _Claim | None:
    """The claim's allocated results on the named devices; None when it holds none."""
    metadata = _mapping(obj.get("metadata"))
    status = _mapping(obj.get("status"))
    allocation = status.get("allocation")
    if not isinstance(allocation, Mapping):
        return None
    named = (sharing.nic_device, sharing.vswitch_device)
    results = []
    for result in _list(_mapping(allocation.get("devices")).get("results")):
        if not isinstance(result, Mapping) or result.get("driver") != sharing.driver:
            continue
        if result.get("adminAccess") is True or result.get("device") not in named:
            continue
        consumed = {
            sharing.qualified(str(key)): mbps_of_quantity(value)
            for key, value in _mapping(result.get("consumedCapacity")).items()
        }
        results.append(
            _Result(
                pool=str(result.get("pool") or ""), device=str(result["device"]), consumed=consumed
            )
        )
    if not results:
        return None
    pods = frozenset(
        str(entry.get("uid"))
        for entry in _list(status.get("reservedFor"))
        if isinstance(entry, Mapping) and entry.get("resource") == "pods" and entry.get("uid")
    )
    return _Claim(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
        results=tuple(results),
        selector_node=_single_node(allocation.get("nodeSelector")),
        pod_uids=pods,
    )


def _charge(result: _Result, device: _Device | None, sharing: DraSharing) -> LinkBudget:
    def amount(capacity_name: str) -> int:
        name = sharing.qualified(capacity_name)
        consumed = result.consumed.get(name)
        if consumed is not None:
            return consumed
        # Not recorded (a device allocated whole) or unreadable: the whole device is held.
        return device.capacity.get(name, 0) if device is not None else 0

    return LinkBudget(amount(sharing.uplink_capacity), amount(sharing.downlink_capacity))


DeviceLookup = Mapping[str, Mapping[str, _Device]]
"""Pool name → device name → device."""


def claim_holds(claim: _Claim, devices: DeviceLookup, sharing: DraSharing) -> dict[str, ClaimHold]:
    """What the claim holds, by node; results no slice or selector locates are left out."""
    usage_by_node: dict[str, Usage] = {}
    for result in claim.results:
        device = devices.get(result.pool, {}).get(result.device)
        node = device.node if device is not None and device.node else claim.selector_node
        if not node:
            continue
        link = _charge(result, device, sharing)
        usage = Usage(network=link) if result.device == sharing.nic_device else Usage(local=link)
        usage_by_node[node] = usage_by_node.get(node, Usage()) + usage
    return {
        node: ClaimHold(claim.namespace, claim.name, claim.uid, usage, claim.pod_uids)
        for node, usage in usage_by_node.items()
    }


# The running tally ----------------------------------------------------------------------------


class DraHoldings:
    """Claims and the driver's slices as they come and go; what the claims hold per node.

    Thread-safe (one lock, never held while calling out): the handlers of two watch caches
    feed it, and every ``put_*``/``remove_*`` returns the nodes whose holding changed.
    """

    def __init__(self, sharing: DraSharing) -> None:
        self.sharing = sharing
        self._lock = threading.Lock()
        self._pools: dict[str, dict[str, _Slice]] = {}  # pool -> slice name -> slice
        self._pool_of_slice: dict[str, str] = {}
        # pool -> device name -> device, from the pool's newest generation
        self._devices: dict[str, dict[str, _Device]] = {}
        self._claims: dict[str, _Claim] = {}
        self._claims_by_pool: dict[str, set[str]] = {}
        self._holds: dict[str, dict[str, ClaimHold]] = {}  # claim key -> node -> hold
        self._by_node: dict[str, dict[str, ClaimHold]] = {}  # node -> claim key -> hold

    def holding(self, node: str) -> DraHolding:
        with self._lock:
            holds = list(self._by_node.get(node, {}).values())
        return DraHolding.of(holds) if holds else NO_HOLDING

    def nodes(self) -> set[str]:
        with self._lock:
            return set(self._by_node)

    def unlocated(self) -> list[str]:
        """Allocated claims on the named devices that no slice or selector places on a node."""
        with self._lock:
            return sorted(key for key in self._claims if not self._holds.get(key))

    def is_unlocated(self, namespace: str, name: str) -> bool:
        key = f"{namespace}/{name}"
        with self._lock:
            return key in self._claims and not self._holds.get(key)

    # Slices ---------------------------------------------------------------------------------

    def put_slice(self, obj: Mapping[str, Any]) -> set[str]:
        read = _Slice.read(obj, self.sharing)
        name = _name(obj)
        with self._lock:
            pools = self._drop_slice(name)
            if read is not None:
                self._pools.setdefault(read.pool, {})[name] = read
                self._pool_of_slice[name] = read.pool
                pools.add(read.pool)
            return self._relocate(pools)

    def remove_slice(self, obj: Mapping[str, Any]) -> set[str]:
        with self._lock:
            return self._relocate(self._drop_slice(_name(obj)))

    def _drop_slice(self, name: str) -> set[str]:
        pool = self._pool_of_slice.pop(name, None)
        if pool is None:
            return set()
        members = self._pools.get(pool, {})
        members.pop(name, None)
        if not members:
            self._pools.pop(pool, None)
        return {pool}

    def _relocate(self, pools: set[str]) -> set[str]:
        """Rebuild the devices of ``pools`` from their newest generation; recount their claims."""
        changed: set[str] = set()
        for pool in pools:
            members = sorted(self._pools.get(pool, {}).values(), key=lambda s: s.name)
            newest = max((s.generation for s in members), default=0)
            devices: dict[str, _Device] = {}
            for member in members:
                if member.generation == newest:
                    for device in member.devices:
                        # A name twice in one pool is the driver's error: the first slice wins,
                        # whatever order the slices came in.
                        devices.setdefault(device.name, device)
            if devices:
                self._devices[pool] = devices
            else:
                self._devices.pop(pool, None)
            for key in list(self._claims_by_pool.get(pool, ())):
                changed |= self._recount(key, self._claims.get(key))
        return changed

    # Claims ---------------------------------------------------------------------------------

    def put_claim(self, obj: Mapping[str, Any]) -> set[str]:
        claim = _read_claim(obj, self.sharing)
        with self._lock:
            return self._store_claim(_key(obj), claim)

    def remove_claim(self, obj: Mapping[str, Any]) -> set[str]:
        with self._lock:
            return self._store_claim(_key(obj), None)

    def _store_claim(self, key: str, claim: _Claim | None) -> set[str]:
        before = self._claims.pop(key, None)
        if before is not None:
            for pool in before.pools:
                members = self._claims_by_pool.get(pool)
                if members is not None:
                    members.discard(key)
                    if not members:
                        del self._claims_by_pool[pool]
        if claim is not None:
            self._claims[key] = claim
            for pool in claim.pools:
                self._claims_by_pool.setdefault(pool, set()).add(key)
        return self._recount(key, claim)

    def _recount(self, key: str, claim: _Claim | None) -> set[str]:
        before = self._holds.pop(key, {})
        after = claim_holds(claim, self._devices, self.sharing) if claim is not None else {}
        if after:
            self._holds[key] = after
        for node in before:
            held = self._by_node.get(node)
            if held is not None:
                held.pop(key, None)
                if not held:
                    del self._by_node[node]
        for node, hold in after.items():
            self._by_node.setdefault(node, {})[key] = hold
        return {node for node in set(before) | set(after) if before.get(node) != after.get(node)}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_mapping(obj.get("metadata")).get("name") or "")


def _key(obj: Mapping[str, Any]) -> str:
    metadata = _mapping(obj.get("metadata"))
    return f"{metadata.get('namespace') or ''}/{metadata.get('name') or ''}"


def holdings_of(
    claims: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]], sharing: DraSharing
) -> dict[str, DraHolding]:
    """Every node's holding from one list of claims and one of slices (audits, snapshots)."""
    holdings = DraHoldings(sharing)
    for obj in slices:
        holdings.put_slice(obj)
    for obj in claims:
        holdings.put_claim(obj)
    return {node: holdings.holding(node) for node in sorted(holdings.nodes())}
