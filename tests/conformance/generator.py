"""Seeded random cases: a small cluster (nodes, namespaces, pods already placed) and a pod to
place in it. Pure: the same seed always gives the same case.

A case is *logical*: node ``n0``, namespace ``ns1``, topology key ``zone``. ``world.World``
renders it into API objects for one isolated copy of it in a shared cluster, so that many
cases (and several copies of one case) run side by side without seeing each other:

- every node and pod carries the world's label, and the pod to place selects the world's
  nodes with a nodeSelector;
- namespaces are the world's own; a term that reaches other namespaces (``namespaceSelector``)
  is narrowed to the world's namespaces or pods by its label;
- spread constraints that count nodes the pod cannot use (``nodeAffinityPolicy: Ignore``)
  use topology keys that only the world's nodes carry (``rack``, ``row``).

Within those rules everything is random: labels, zones and regions (sometimes missing), taints
of every effect, cordoned nodes, cpu requests that fill nodes, pods being deleted, required and
preferred (anti-)affinity with every operator, namespaces lists and selectors, match/mismatch
label keys, hard and soft spread constraints with maxSkew, minDomains and both inclusion
policies, host ports with protocols and host IPs, tolerations, nodeSelector and required node
affinity.

Volume cases add objects through ``Case.extras`` (see ``world.Extra``); the generator itself
knows nothing of them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

HOST = "host"
ZONE = "zone"
REGION = "region"
RACK = "rack"
ROW = "row"
TOPOLOGY_KEYS = (HOST, ZONE, REGION, RACK, ROW)
WORLD_SCOPED_KEYS = (RACK, ROW)
"""Keys only the nodes of one world carry: safe for constraints that count every node."""

APPS = ("web", "db", "cache")


@dataclass(frozen=True)
class Selector:
    """A label selector: ``None`` fields are left out."""

    match_labels: dict[str, str] | None = None
    expressions: tuple[JSON, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.expressions


@dataclass(frozen=True)
class Term:
    key: str
    selector: Selector | None  # None: the field left out (matches nothing)
    namespaces: tuple[str, ...] = ()
    namespace_selector: Selector | None = None
    match_label_keys: tuple[str, ...] = ()
    mismatch_label_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spread:
    key: str
    max_skew: int
    hard: bool
    selector: Selector | None
    min_domains: int | None = None
    node_affinity_policy: str | None = None
    node_taints_policy: str | None = None
    match_label_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Port:
    port: int
    protocol: str | None = None
    host_ip: str | None = None


@dataclass
class PodPlan:
    name: str
    namespace: str
    labels: dict[str, str]
    node: str = ""  # logical node of a pod already placed; "" for the pod to place
    cpu_millis: int = 0
    terminating: bool = False
    required_affinity: list[Term] = field(default_factory=list)
    required_anti_affinity: list[Term] = field(default_factory=list)
    preferred_affinity: list[tuple[int, Term]] = field(default_factory=list)
    preferred_anti_affinity: list[tuple[int, Term]] = field(default_factory=list)
    spread: list[Spread] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)
    tolerations: list[JSON] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)
    node_affinity_terms: list[list[JSON]] = field(default_factory=list)
    """Required node affinity: ORed terms of ANDed matchExpressions (logical keys)."""


@dataclass
class NodePlan:
    name: str
    labels: dict[str, str]  # logical topology keys and plain labels
    taints: list[JSON] = field(default_factory=list)
    cpu: str = "4"
    cordoned: bool = False


@dataclass
class Case:
    seed: int
    namespaces: dict[str, dict[str, str]]
    nodes: list[NodePlan]
    placed: list[PodPlan]
    pod: PodPlan
    extras: list[Any] = field(default_factory=list)
    """Further objects (``world.Extra``) created before the pods: PVs, PVCs, classes..."""

    def describe(self) -> str:
        terms = []
        pod = self.pod
        for label, present in (
            ("affinity", pod.required_affinity),
            ("anti-affinity", pod.required_anti_affinity),
            ("preferred", pod.preferred_affinity or pod.preferred_anti_affinity),
            ("spread", pod.spread),
            ("ports", pod.ports),
        ):
            if present:
                terms.append(label)
        return (
            f"seed {self.seed}: {len(self.nodes)} nodes, {len(self.placed)} placed pods, "
            f"pod with {', '.join(terms) or 'no terms'}"
        )


def _selector(rng: random.Random, own_app: str = "") -> Selector | None:
    """Often the pod's own app (a workload keeping its replicas apart, or spread), else any."""
    roll = rng.random()
    if roll < 0.04:
        return None
    if roll < 0.08:
        return Selector()
    app = own_app if own_app and rng.random() < 0.5 else rng.choice(APPS)
    if rng.random() < 0.55:
        labels = {"app": app}
        if rng.random() < 0.2:
            labels["tier"] = rng.choice(("fe", "be"))
        return Selector(match_labels=labels)
    operator = rng.choice(("In", "NotIn", "Exists", "DoesNotExist"))
    key = rng.choice(("app", "tier"))
    expression: JSON = {"key": key, "operator": operator}
    if operator in ("In", "NotIn"):
        pool = APPS if key == "app" else ("fe", "be")
        expression["values"] = sorted(rng.sample(pool, rng.randint(1, 2)))
    expressions = [expression]
    if rng.random() < 0.3:
        expressions.append({"key": "app", "operator": "In", "values": [app]})
    return Selector(expressions=tuple(expressions))


def _term(rng: random.Random, namespaces: list[str], own_app: str = "") -> Term:
    selector = _selector(rng, own_app)
    roll = rng.random()
    listed: tuple[str, ...] = ()
    namespace_selector: Selector | None = None
    if roll < 0.2:
        listed = tuple(sorted(rng.sample(namespaces, rng.randint(1, len(namespaces)))))
    elif roll < 0.32:
        namespace_selector = Selector(match_labels={"team": rng.choice(("a", "b"))})
    elif roll < 0.38:
        namespace_selector = Selector()
    match_keys: tuple[str, ...] = ()
    mismatch_keys: tuple[str, ...] = ()
    if selector is not None and rng.random() < 0.12:
        if rng.random() < 0.5:
            match_keys = ("rev",)
        else:
            mismatch_keys = ("rev",)
    return Term(
        key=rng.choice(TOPOLOGY_KEYS),
        selector=selector,
        namespaces=listed,
        namespace_selector=namespace_selector,
        match_label_keys=match_keys,
        mismatch_label_keys=mismatch_keys,
    )


def _spreads(rng: random.Random, own_app: str) -> list[Spread]:
    spreads: list[Spread] = []
    used: set[tuple[str, bool]] = set()
    for _ in range(rng.choice((1, 1, 1, 2))):
        hard = rng.random() < 0.7
        affinity_policy = rng.choice((None, None, "Honor", "Ignore"))
        keys = WORLD_SCOPED_KEYS if affinity_policy == "Ignore" else TOPOLOGY_KEYS
        key = rng.choice(keys)
        if (key, hard) in used:  # the apiserver refuses a repeated (key, whenUnsatisfiable)
            continue
        used.add((key, hard))
        selector = _selector(rng, own_app)
        spreads.append(
            Spread(
                key=key,
                max_skew=rng.choice((1, 1, 1, 2)),
                hard=hard,
                selector=selector,
                min_domains=rng.choice((2, 3, 4)) if hard and rng.random() < 0.2 else None,
                node_affinity_policy=affinity_policy,
                node_taints_policy=rng.choice((None, None, "Honor", "Ignore")),
                match_label_keys=("rev",) if selector is not None and rng.random() < 0.15 else (),
            )
        )
    return spreads


def _ports(rng: random.Random) -> list[Port]:
    ports: dict[tuple[int, str], Port] = {}
    for _ in range(rng.randint(1, 2)):
        port = Port(
            port=rng.choice((80, 443, 8080)),
            protocol=rng.choice((None, None, "TCP", "UDP")),
            host_ip=rng.choice((None, None, "0.0.0.0", "127.0.0.1", "127.0.0.2")),
        )
        ports.setdefault((port.port, port.protocol or "TCP"), port)
    return list(ports.values())


def _tolerations(rng: random.Random) -> list[JSON]:
    choices: list[JSON] = [
        {"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Exists"},
        {"key": "dedicated", "operator": "Equal", "value": "y"},
        {"operator": "Exists"},
        {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"},
    ]
    return rng.sample(choices, rng.randint(1, 2))


def _pod_labels(rng: random.Random) -> dict[str, str]:
    labels = {"app": rng.choice(APPS)}
    if rng.random() < 0.5:
        labels["tier"] = rng.choice(("fe", "be"))
    if rng.random() < 0.6:
        labels["rev"] = rng.choice(("1", "2"))
    return labels


def generate(seed: int) -> Case:
    rng = random.Random(seed)
    namespaces = {f"ns{i}": {} for i in range(rng.randint(1, 3))}
    for labels in namespaces.values():
        if rng.random() < 0.7:
            labels["team"] = rng.choice(("a", "b"))
    names = list(namespaces)
    nodes = []
    for i in range(rng.randint(2, 6)):
        labels = {
            ZONE: rng.choice(("a", "b", "c")),
            REGION: rng.choice(("r1", "r2")),
            RACK: rng.choice(("k1", "k2", "k3")),
            ROW: rng.choice(("w1", "w2")),
        }
        for key in (ZONE, REGION, RACK, ROW):
            if rng.random() < 0.08:
                del labels[key]
        if rng.random() < 0.3:
            labels["disk"] = rng.choice(("ssd", "hdd"))
        taints = []
        if rng.random() < 0.2:
            taints.append(
                {
                    "key": "dedicated",
                    "value": rng.choice(("x", "y")),
                    "effect": rng.choice(("NoSchedule", "NoExecute", "PreferNoSchedule")),
                }
            )
        nodes.append(
            NodePlan(
                f"n{i}",
                labels,
                taints,
                cpu=rng.choice(("2", "4", "4")),
                cordoned=rng.random() < 0.07,
            )
        )
    placed = []
    for i in range(rng.randint(0, 10)):
        pod = PodPlan(
            name=f"p{i}",
            namespace=names[0] if rng.random() < 0.7 else rng.choice(names),
            labels=_pod_labels(rng),
            node=rng.choice(nodes).name,
            cpu_millis=rng.choice((0, 100, 500, 1000, 1500)),
            terminating=rng.random() < 0.06,
        )
        if rng.random() < 0.15:
            pod.required_anti_affinity.append(_term(rng, names))
        if rng.random() < 0.1:
            pod.preferred_affinity.append((rng.randint(1, 100), _term(rng, names)))
        if rng.random() < 0.15:
            pod.ports = _ports(rng)
        placed.append(pod)
    pod = PodPlan(
        name="probe",
        namespace=names[0],
        labels=_pod_labels(rng),
        cpu_millis=rng.choice((0, 100, 500, 1000, 1500)),
    )
    own = pod.labels["app"]
    if rng.random() < 0.3:
        pod.required_affinity = [_term(rng, names, own) for _ in range(rng.choice((1, 1, 2)))]
    if rng.random() < 0.35:
        pod.required_anti_affinity = [_term(rng, names, own) for _ in range(rng.choice((1, 1, 2)))]
    if rng.random() < 0.2:
        pod.preferred_affinity = [(rng.randint(1, 100), _term(rng, names, own))]
    if rng.random() < 0.15:
        pod.preferred_anti_affinity = [(rng.randint(1, 100), _term(rng, names, own))]
    if rng.random() < 0.5:
        pod.spread = _spreads(rng, own)
    if rng.random() < 0.2:
        pod.ports = _ports(rng)
    if rng.random() < 0.3:
        pod.tolerations = _tolerations(rng)
    if rng.random() < 0.12:
        pod.node_selector = {"disk": "ssd"}
    if rng.random() < 0.15:
        pod.node_affinity_terms = [
            [{"key": ZONE, "operator": rng.choice(("In", "NotIn")), "values": ["a"]}]
            for _ in range(rng.choice((1, 2)))
        ]
        if len(pod.node_affinity_terms) == 2:
            pod.node_affinity_terms[1] = [{"key": REGION, "operator": "In", "values": ["r2"]}]
    return Case(seed, namespaces, nodes, placed, pod)
