"""Which volume fits which claim on which node: pure, kube-scheduler's rules (v1.37).

- ``volume_fits_node``: a volume's required node affinity against a node's labels. As in
  kube-scheduler the node is matched by its labels alone: ``matchFields`` requirements are
  not evaluated, so a term made only of them matches every node.
- ``find_matching_volume``: the volume a claim would be bound to on a node. A volume already
  (pre-)bound to the claim wins if it fits the node; otherwise the smallest volume that is
  Available, of the claim's class, volume mode and attributes class, selected by the claim's
  selector, big enough, offering every access mode asked, not being deleted, and usable from
  the node. Ties go to the volume whose name sorts first (kube-scheduler's tie is arbitrary).
- ``Candidates``: a class's volumes indexed by the one host a local volume's affinity names,
  so a node looks only at its own volumes and those usable from more than one node.
- ``topology_allows``: a StorageClass's ``allowedTopologies`` against a node's labels.
- ``zone_constraints`` / ``zones_allow``: VolumeZone's zone and region labels of a volume.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.plugins.node_affinity import term_matches
from scheduler.volumes.objects import (
    VOLUME_AVAILABLE,
    ClaimFacts,
    ClassFacts,
    VolumeFacts,
)

ZONE_LABELS = (
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
)
_GA_LABEL = {
    "failure-domain.beta.kubernetes.io/zone": "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region": "topology.kubernetes.io/region",
}
MULTI_ZONE_DELIMITER = "__"


def volume_fits_node(volume: VolumeFacts, labels: Mapping[str, str]) -> bool:
    if volume.node_terms is None:
        return True
    return any(_term_matches_labels(term, labels) for term in volume.node_terms)


def _term_matches_labels(term: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    expressions = term.get("matchExpressions") or []
    if not expressions:  # an empty term matches no node; one of fields only, every node
        return bool(term.get("matchFields"))
    return term_matches({"matchExpressions": expressions}, labels, "")


def _claimable(volume: VolumeFacts, claim: ClaimFacts) -> bool:
    """The checks that do not depend on the node, cheapest first."""
    if claim.request is None or volume.capacity is None or volume.capacity < claim.request:
        return False
    return (
        volume.volume_mode == claim.volume_mode
        and volume.attributes_class == claim.attributes_class
        and not volume.deleting
    )


def find_matching_volume(
    claim: ClaimFacts,
    volumes: Iterable[VolumeFacts],
    labels: Mapping[str, str],
    excluded: Collection[str] = (),
) -> VolumeFacts | None:
    smallest: VolumeFacts | None = None
    for volume in volumes:
        if volume.name in excluded:
            continue
        prebound = volume.bound_to(claim)
        if volume.claim_ref is not None and not prebound:
            continue
        if not _claimable(volume, claim):
            continue
        fits_node = volume_fits_node(volume, labels)
        if prebound:
            return volume if fits_node else None
        if volume.phase != VOLUME_AVAILABLE:
            continue
        if claim.selector is not None and not claim.selector.matches(volume.labels):
            continue
        if volume.storage_class != claim.storage_class or not fits_node:
            continue
        if not claim.access_modes <= volume.access_modes:
            continue
        assert volume.capacity is not None  # _claimable
        if (
            smallest is None
            or smallest.capacity is None
            or volume.capacity < smallest.capacity
            or (volume.capacity == smallest.capacity and volume.name < smallest.name)
        ):
            smallest = volume
    return smallest


HOSTNAME = "kubernetes.io/hostname"


def _hosts(volume: VolumeFacts) -> frozenset[str] | None:
    """The hostnames a volume's affinity is exactly ``kubernetes.io/hostname In [...]`` of (a
    local volume's), else None."""
    terms = volume.node_terms
    if terms is None or len(terms) != 1:
        return None
    expressions = terms[0].get("matchExpressions") or []
    if len(expressions) != 1:
        return None
    [expression] = expressions
    if expression.get("key") != HOSTNAME or expression.get("operator") != "In":
        return None
    return frozenset(str(value) for value in expression.get("values") or ())


@dataclass(frozen=True, slots=True)
class Candidates:
    """The volumes of one class a claim may get, indexed for ``for_node``."""

    claimed: tuple[VolumeFacts, ...] = ()
    """With a claim reference: only ever matched by the claim they name, on any node."""
    by_host: Mapping[str, tuple[VolumeFacts, ...]] = field(default_factory=dict)
    elsewhere: tuple[VolumeFacts, ...] = ()
    """Unclaimed, with any other affinity (or none): checked on every node."""

    @classmethod
    def of(cls, volumes: Iterable[VolumeFacts]) -> Candidates:
        claimed, elsewhere = [], []
        by_host: dict[str, list[VolumeFacts]] = {}
        for volume in volumes:
            hosts = _hosts(volume)
            if volume.claim_ref is not None:
                claimed.append(volume)
            elif hosts is None:
                elsewhere.append(volume)
            else:
                for host in hosts:
                    by_host.setdefault(host, []).append(volume)
        return cls(tuple(claimed), {h: tuple(v) for h, v in by_host.items()}, tuple(elsewhere))

    def for_node(self, labels: Mapping[str, str]) -> Iterable[VolumeFacts]:
        """Every volume that could fit a node with ``labels``, claimed ones first (a volume
        pre-bound to the claim decides alone, as in kube-scheduler)."""
        yield from self.claimed
        host = labels.get(HOSTNAME)
        if host is not None:
            yield from self.by_host.get(host, ())
        yield from self.elsewhere


def topology_allows(storage_class: ClassFacts, labels: Mapping[str, str]) -> bool:
    terms = storage_class.allowed_topologies
    if not terms:
        return True
    return any(term and all(labels.get(key) in values for key, values in term) for term in terms)


@dataclass(frozen=True, slots=True)
class ZoneConstraint:
    volume: str
    key: str
    values: frozenset[str]


def zone_constraints(volume: VolumeFacts) -> tuple[ZoneConstraint, ...]:
    """The zone and region labels of a volume; a value may list zones joined by ``__``. A
    value with an empty zone in its list is ignored, as kube-scheduler does."""
    found = []
    for key in ZONE_LABELS:
        value = volume.labels.get(key)
        if value is None:
            continue
        zones = [zone.strip() for zone in value.split(MULTI_ZONE_DELIMITER)]
        if all(zones):
            found.append(ZoneConstraint(volume.name, key, frozenset(zones)))
    return tuple(found)


def zones_allow(constraints: Iterable[ZoneConstraint], labels: Mapping[str, str]) -> bool:
    """A node with no zone or region label at all takes any volume (a single-zone cluster)."""
    if not any(key in labels for key in ZONE_LABELS):
        return True
    for constraint in constraints:
        value = labels.get(constraint.key)
        if value is None:
            value = labels.get(_GA_LABEL.get(constraint.key, constraint.key))
        if value is None or value not in constraint.values:
            return False
    return True
