"""A pod's inter-pod terms, spread constraints and host ports, read once into plain values.

What each field means is kube-scheduler's (v1.37), not ours:

- ``AffinityTerm``: a ``PodAffinityTerm``. ``namespaces`` is the explicit list, or the pod's own
  namespace when neither the list nor a ``namespaceSelector`` is given. A ``None`` selector
  (the field left out) matches nothing; an empty one (``{}``) matches everything.
  ``matchLabelKeys``/``mismatchLabelKeys`` are merged into the label selector as the apiserver
  merges them when it admits the pod (``key in (value)`` / ``key notin (value)`` for each key the
  pod has), so a pod read from a manifest and the same pod read back from the cluster agree.
- ``SpreadConstraint``: a ``topologySpreadConstraint`` with its defaults filled in (``minDomains``
  1, ``nodeAffinityPolicy: Honor``, ``nodeTaintsPolicy: Ignore``) and its ``matchLabelKeys``
  merged into the selector, as the PodTopologySpread plugin does.
- ``HostPort``: a container port with a ``hostPort``, of a container or of a restartable
  (sidecar) init container; host IP ``0.0.0.0`` and protocol ``TCP`` when left out.

Parsing never raises: a selector with an unknown operator (which the apiserver refuses) reads
as matching nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubeio.labels import LabelSelector, Requirement

ANY_IP = "0.0.0.0"
_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}


def label_selector(spec: Any) -> LabelSelector | None:
    """``metav1.LabelSelector`` JSON as a selector; ``None`` (matches nothing) when absent."""
    if not isinstance(spec, Mapping):
        return None
    requirements = [
        Requirement(str(key), "in", frozenset({str(value)}))
        for key, value in (spec.get("matchLabels") or {}).items()
    ]
    for expression in spec.get("matchExpressions") or []:
        operator = _OPERATORS.get(str(expression.get("operator")))
        if operator is None:
            return None
        values = frozenset(str(value) for value in expression.get("values") or ())
        requirements.append(Requirement(str(expression.get("key", "")), operator, values))
    return LabelSelector(tuple(requirements))


def selector_matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return False
    # A plain loop: this is the innermost loop of inter-pod counting, and all() over a
    # generator costs about a third more.
    for requirement in selector.requirements:  # noqa: SIM110
        if not requirement.matches(labels):
            return False
    return True


def _with_label_keys(
    selector: LabelSelector | None,
    pod_labels: Mapping[str, str],
    match_keys: Any,
    mismatch_keys: Any = (),
) -> LabelSelector | None:
    if selector is None:  # nothing matches; keys cannot widen that
        return None
    added = [
        Requirement(str(key), "in", frozenset({pod_labels[key]}))
        for key in match_keys or ()
        if key in pod_labels
    ]
    added += [
        Requirement(str(key), "notin", frozenset({pod_labels[key]}))
        for key in mismatch_keys or ()
        if key in pod_labels
    ]
    if not added:
        return selector
    present = set(selector.requirements)
    extra = tuple(r for r in added if r not in present)
    return LabelSelector(selector.requirements + extra, selector.text) if extra else selector


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    topology_key: str
    selector: LabelSelector | None
    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None = None

    @property
    def all_namespaces(self) -> bool:
        """A ``namespaceSelector: {}``: pods of every namespace, known or not."""
        return self.namespace_selector is not None and self.namespace_selector.is_empty()

    def matches(
        self, namespace: str, labels: Mapping[str, str], namespace_labels: Mapping[str, str] | None
    ) -> bool:
        """Whether a pod of ``namespace`` with ``labels`` is one this term selects;
        ``namespace_labels`` are that namespace's labels (None: unknown, read as none)."""
        if namespace not in self.namespaces and not (
            self.namespace_selector is not None
            and selector_matches(self.namespace_selector, namespace_labels or {})
        ):
            return False
        return selector_matches(self.selector, labels)

    def resolved(self, namespace_labels: Mapping[str, Mapping[str, str]]) -> AffinityTerm:
        """The term with a non-empty ``namespaceSelector`` turned into the names of the known
        namespaces it selects, as kube-scheduler does for the pod being scheduled."""
        if self.namespace_selector is None or self.namespace_selector.is_empty():
            return self
        chosen = {
            name
            for name, labels in namespace_labels.items()
            if selector_matches(self.namespace_selector, labels)
        }
        return AffinityTerm(self.topology_key, self.selector, self.namespaces | chosen, None)


@dataclass(frozen=True, slots=True)
class WeightedTerm:
    weight: int
    term: AffinityTerm


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    hard: bool
    """``whenUnsatisfiable: DoNotSchedule`` (a filter); else ``ScheduleAnyway`` (a score)."""
    selector: LabelSelector | None
    min_domains: int = 1
    honor_node_affinity: bool = True
    honor_taints: bool = False

    @property
    def counts_nothing(self) -> bool:
        """kube-scheduler counts no pod for a missing or empty (``{}``) selector."""
        return self.selector is None or self.selector.is_empty()


@dataclass(frozen=True, slots=True)
class HostPort:
    ip: str
    protocol: str
    port: int


@dataclass(frozen=True, slots=True)
class PodTerms:
    required_affinity: tuple[AffinityTerm, ...] = ()
    required_anti_affinity: tuple[AffinityTerm, ...] = ()
    preferred_affinity: tuple[WeightedTerm, ...] = ()
    preferred_anti_affinity: tuple[WeightedTerm, ...] = ()

    @property
    def any(self) -> bool:
        return bool(
            self.required_affinity
            or self.required_anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )


NO_TERMS = PodTerms()


def _term(raw: Any, namespace: str, pod_labels: Mapping[str, str]) -> AffinityTerm:
    raw = raw if isinstance(raw, Mapping) else {}
    names = frozenset(str(n) for n in raw.get("namespaces") or ())
    raw_namespace_selector = raw.get("namespaceSelector")
    namespace_selector = (
        label_selector(raw_namespace_selector) if raw_namespace_selector is not None else None
    )
    if not names and raw_namespace_selector is None:
        names = frozenset({namespace})
    selector = _with_label_keys(
        label_selector(raw.get("labelSelector")),
        pod_labels,
        raw.get("matchLabelKeys"),
        raw.get("mismatchLabelKeys"),
    )
    return AffinityTerm(str(raw.get("topologyKey", "")), selector, names, namespace_selector)


def _weighted(raw: Any, namespace: str, pod_labels: Mapping[str, str]) -> WeightedTerm:
    raw = raw if isinstance(raw, Mapping) else {}
    return WeightedTerm(
        int(raw.get("weight") or 0), _term(raw.get("podAffinityTerm"), namespace, pod_labels)
    )


def read_terms(spec: Mapping[str, Any], namespace: str, pod_labels: Mapping[str, str]) -> PodTerms:
    affinity = spec.get("affinity") or {}
    pod_affinity = affinity.get("podAffinity") or {}
    pod_anti_affinity = affinity.get("podAntiAffinity") or {}
    if not pod_affinity and not pod_anti_affinity:
        return NO_TERMS
    required = "requiredDuringSchedulingIgnoredDuringExecution"
    preferred = "preferredDuringSchedulingIgnoredDuringExecution"
    return PodTerms(
        required_affinity=tuple(
            _term(t, namespace, pod_labels) for t in pod_affinity.get(required) or ()
        ),
        required_anti_affinity=tuple(
            _term(t, namespace, pod_labels) for t in pod_anti_affinity.get(required) or ()
        ),
        preferred_affinity=tuple(
            _weighted(t, namespace, pod_labels) for t in pod_affinity.get(preferred) or ()
        ),
        preferred_anti_affinity=tuple(
            _weighted(t, namespace, pod_labels) for t in pod_anti_affinity.get(preferred) or ()
        ),
    )


def read_spread_constraints(
    spec: Mapping[str, Any], pod_labels: Mapping[str, str]
) -> tuple[SpreadConstraint, ...]:
    constraints = []
    for raw in spec.get("topologySpreadConstraints") or ():
        if not isinstance(raw, Mapping):
            continue
        constraints.append(
            SpreadConstraint(
                max_skew=int(raw.get("maxSkew") or 1),
                topology_key=str(raw.get("topologyKey", "")),
                hard=raw.get("whenUnsatisfiable", "DoNotSchedule") != "ScheduleAnyway",
                selector=_with_label_keys(
                    label_selector(raw.get("labelSelector")), pod_labels, raw.get("matchLabelKeys")
                ),
                min_domains=int(raw.get("minDomains") or 1),
                honor_node_affinity=raw.get("nodeAffinityPolicy", "Honor") != "Ignore",
                honor_taints=raw.get("nodeTaintsPolicy", "Ignore") == "Honor",
            )
        )
    return tuple(constraints)


def read_host_ports(spec: Mapping[str, Any]) -> tuple[HostPort, ...]:
    """Host ports of the containers and of the init containers that run beside them."""
    containers = [
        c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"
    ] + list(spec.get("containers") or ())
    found = []
    for container in containers:
        for port in container.get("ports") or ():
            host_port = int(port.get("hostPort") or 0)
            if host_port > 0:
                found.append(
                    HostPort(
                        str(port.get("hostIP") or ANY_IP),
                        str(port.get("protocol") or "TCP"),
                        host_port,
                    )
                )
    return tuple(found)
