"""One isolated copy of a case in a shared cluster: its API objects, their creation and their
removal.

Names: every node and namespace of a world is prefixed with ``cf-<run>-<seed>-<copy>``, every
object carries ``WORLD_LABEL=<run>-<seed>-<copy>``, and the world-scoped topology keys
(``rack``, ``row``) become ``<world>.conformance.vaclab.org/<key>``. See ``generator`` for why
that keeps worlds from seeing each other.

The pod to place is created with a scheduling gate (``HOLD_GATE``), so that both schedulers
judge the very object the apiserver stored, defaults and admission included: ours reads it
from its watch cache while kube-scheduler ignores it; then the gate is lifted.

``Extra`` is how other kinds join a case (volume cases: StorageClasses, PVs, PVCs): a
logical body, the resource it is created under, and a ``render`` that maps its names into the
world (the default renames cluster-scoped objects, places namespaced ones in the world's
namespace and labels both).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubeio.errors import ApiError, NotFound
from kubeio.resources import NAMESPACES, NODES, PODS, Resource
from kubeio.rest import KubeApi
from localcluster.nodes import node_body
from tests.conformance.generator import (
    HOST,
    RACK,
    REGION,
    ROW,
    ZONE,
    Case,
    PodPlan,
    Selector,
    Spread,
    Term,
)

JSON = dict[str, Any]
WORLD_LABEL = "conformance.vaclab.org/world"
PROBE_LABEL = "conformance.vaclab.org/probe"
HOLD_GATE = "conformance.vaclab.org/hold"
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", namespaced=True)


@dataclass(frozen=True)
class Extra:
    resource: Resource
    body: JSON
    render: Callable[[World, JSON], JSON] | None = None

    def rendered(self, world: World) -> JSON:
        body = copy.deepcopy(self.body)
        if self.render is not None:
            return self.render(world, body)
        metadata = body.setdefault("metadata", {})
        if self.resource.namespaced:
            metadata["namespace"] = world.namespace(metadata.get("namespace", "ns0"))
        else:
            metadata["name"] = world.name(metadata["name"])
        metadata.setdefault("labels", {})[WORLD_LABEL] = world.id
        return body


@dataclass
class World:
    run: str
    case: Case
    copy: int
    created: list[tuple[Resource, str | None, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.run}-{self.case.seed}-{self.copy}"

    def name(self, logical: str) -> str:
        return f"cf-{self.id}-{logical}"

    def namespace(self, logical: str) -> str:
        return self.name(logical)

    def node(self, logical: str) -> str:
        return self.name(logical)

    def logical_node(self, physical: str) -> str:
        return physical.removeprefix(f"cf-{self.id}-")

    def key(self, logical: str) -> str:
        if logical == HOST:
            return "kubernetes.io/hostname"
        if logical == ZONE:
            return "topology.kubernetes.io/zone"
        if logical == REGION:
            return "topology.kubernetes.io/region"
        if logical in (RACK, ROW):
            return f"{self.id}.conformance.vaclab.org/{logical}"
        return logical

    # Rendering ------------------------------------------------------------------------------

    def _selector(self, selector: Selector | None, *, own_world: bool = False) -> JSON | None:
        if selector is None:
            return None
        rendered: JSON = {}
        labels = dict(selector.match_labels or {})
        if own_world:
            labels[WORLD_LABEL] = self.id
        if labels:
            rendered["matchLabels"] = labels
        if selector.expressions:
            rendered["matchExpressions"] = [dict(e) for e in selector.expressions]
        return rendered

    def _term(self, term: Term) -> JSON:
        rendered: JSON = {"topologyKey": self.key(term.key)}
        reaches_every_namespace = (
            term.namespace_selector is not None and term.namespace_selector.empty
        )
        selector = self._selector(term.selector, own_world=reaches_every_namespace)
        if selector is not None:
            rendered["labelSelector"] = selector
        if term.namespaces:
            rendered["namespaces"] = [self.namespace(n) for n in term.namespaces]
        if term.namespace_selector is not None:
            rendered["namespaceSelector"] = (
                {}
                if reaches_every_namespace
                else self._selector(term.namespace_selector, own_world=True)
            )
        if term.match_label_keys:
            rendered["matchLabelKeys"] = list(term.match_label_keys)
        if term.mismatch_label_keys:
            rendered["mismatchLabelKeys"] = list(term.mismatch_label_keys)
        return rendered

    def _spread(self, spread: Spread) -> JSON:
        rendered: JSON = {
            "maxSkew": spread.max_skew,
            "topologyKey": self.key(spread.key),
            "whenUnsatisfiable": "DoNotSchedule" if spread.hard else "ScheduleAnyway",
        }
        selector = self._selector(spread.selector)
        if selector is not None:
            rendered["labelSelector"] = selector
        if spread.min_domains is not None:
            rendered["minDomains"] = spread.min_domains
        if spread.node_affinity_policy is not None:
            rendered["nodeAffinityPolicy"] = spread.node_affinity_policy
        if spread.node_taints_policy is not None:
            rendered["nodeTaintsPolicy"] = spread.node_taints_policy
        if spread.match_label_keys:
            rendered["matchLabelKeys"] = list(spread.match_label_keys)
        return rendered

    def pod(self, plan: PodPlan, *, pinned: str | None = None) -> JSON:
        """The pod's JSON; the pod to place is gated, selects the world's nodes and, when
        ``pinned`` names a logical node, requires it through ``metadata.name`` matchFields."""
        labels = {**plan.labels, WORLD_LABEL: self.id}
        spec: JSON = {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": (
                        {"requests": {"cpu": f"{plan.cpu_millis}m"}} if plan.cpu_millis else {}
                    ),
                    "ports": [
                        {
                            "containerPort": port.port,
                            "hostPort": port.port,
                            **({"protocol": port.protocol} if port.protocol else {}),
                            **({"hostIP": port.host_ip} if port.host_ip else {}),
                        }
                        for port in plan.ports
                    ],
                }
            ],
            "terminationGracePeriodSeconds": 0,
        }
        affinity: JSON = {}
        for kind, required, preferred in (
            ("podAffinity", plan.required_affinity, plan.preferred_affinity),
            ("podAntiAffinity", plan.required_anti_affinity, plan.preferred_anti_affinity),
        ):
            part: JSON = {}
            if required:
                part["requiredDuringSchedulingIgnoredDuringExecution"] = [
                    self._term(t) for t in required
                ]
            if preferred:
                part["preferredDuringSchedulingIgnoredDuringExecution"] = [
                    {"weight": weight, "podAffinityTerm": self._term(t)} for weight, t in preferred
                ]
            if part:
                affinity[kind] = part
        if plan.node:
            spec["nodeName"] = self.node(plan.node)
        else:
            labels[PROBE_LABEL] = "true"
            spec["schedulingGates"] = [{"name": HOLD_GATE}]
            spec["nodeSelector"] = {**plan.node_selector, WORLD_LABEL: self.id}
            terms = [
                {
                    "matchExpressions": [
                        {**expression, "key": self.key(expression["key"])} for expression in term
                    ]
                }
                for term in plan.node_affinity_terms
            ]
            if pinned is not None:
                pin = {"key": "metadata.name", "operator": "In", "values": [self.node(pinned)]}
                terms = [{**t, "matchFields": [pin]} for t in terms] or [{"matchFields": [pin]}]
            if terms:
                affinity["nodeAffinity"] = {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
                }
        if affinity:
            spec["affinity"] = affinity
        if plan.spread:
            spec["topologySpreadConstraints"] = [self._spread(s) for s in plan.spread]
        if plan.tolerations:
            spec["tolerations"] = [dict(t) for t in plan.tolerations]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": plan.name,
                "namespace": self.namespace(plan.namespace),
                "labels": labels,
            },
            "spec": spec,
        }

    def nodes(self) -> list[JSON]:
        bodies = []
        for index, plan in enumerate(self.case.nodes):
            name = self.node(plan.name)
            labels = {self.key(k): v for k, v in plan.labels.items()}
            labels[WORLD_LABEL] = self.id
            body = node_body(
                name,
                index,
                cpu=plan.cpu,
                memory="16Gi",
                pods="110",
                ephemeral_storage="100Gi",
                zone=None,
                labels=labels,
                taints=plan.taints,
            )
            if plan.cordoned:
                body["spec"]["unschedulable"] = True
            bodies.append(body)
        return bodies

    # API ------------------------------------------------------------------------------------

    def _create(self, api: KubeApi, resource: Resource, body: JSON) -> JSON:
        namespace = body["metadata"].get("namespace") if resource.namespaced else None
        created = api.create(resource.path(namespace=namespace), body)
        self.created.append((resource, namespace, body["metadata"]["name"]))
        return created

    def build(self, api: KubeApi) -> dict[str, JSON]:
        """Create namespaces, nodes, extras and the placed pods; return the placed pods as
        the apiserver stored them, by logical name."""
        for logical, labels in self.case.namespaces.items():
            name = self.namespace(logical)
            self._create(
                api,
                NAMESPACES,
                {"metadata": {"name": name, "labels": {**labels, WORLD_LABEL: self.id}}},
            )
            api.create(SERVICE_ACCOUNTS.path(namespace=name), {"metadata": {"name": "default"}})
        for body in self.nodes():
            self._create(api, NODES, body)
        for extra in self.case.extras:
            self._create(api, extra.resource, extra.rendered(self))
        placed: dict[str, JSON] = {}
        for plan in self.case.placed:
            created = self._create(api, PODS, self.pod(plan))
            if plan.terminating:
                # Bound to a node with no kubelet: a graceful delete leaves it terminating.
                api.request(
                    "DELETE",
                    PODS.path(namespace=self.namespace(plan.namespace), name=plan.name),
                    query={"gracePeriodSeconds": 300},
                )
            placed[plan.name] = created
        return placed

    def create_probe(self, api: KubeApi, pinned: str | None) -> JSON:
        return self._create(api, PODS, self.pod(self.case.pod, pinned=pinned))

    def release_probe(self, api: KubeApi) -> None:
        path = PODS.path(namespace=self.namespace(self.case.pod.namespace), name="probe")
        api.patch(path, {"spec": {"schedulingGates": None}})

    def tear_down(self, api: KubeApi) -> None:
        """Remove what was made, pods at once (no kubelet will), best effort."""
        for logical in self.case.namespaces:
            with contextlib.suppress(ApiError):
                api.request(
                    "DELETE",
                    PODS.path(namespace=self.namespace(logical)),
                    query={"gracePeriodSeconds": 0},
                )
        for resource, namespace, name in reversed(self.created):
            if resource in (PODS, NAMESPACES):
                continue
            with contextlib.suppress(NotFound, ApiError):
                api.request("DELETE", resource.path(namespace=namespace, name=name))
        for logical in self.case.namespaces:
            with contextlib.suppress(ApiError):
                api.request("DELETE", NAMESPACES.path(name=self.namespace(logical)))
