"""Compute-resource requests as integer vectors: cpu in millicores, the rest in units."""

from __future__ import annotations

import decimal
import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any

from bandwidth.quantity import QuantityError, parse_quantity

ResourceVector = dict[str, int]

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
EPHEMERAL_STORAGE = "ephemeral-storage"


def quantity_units(name: str, value: Any) -> int:
    """Integer amount of resource ``name``: millicores for cpu, rounded up; raises ValueError
    (``bandwidth.quantity.QuantityError``) for text that is no bounded quantity."""
    return _units(name == CPU, str(value))


@functools.lru_cache(maxsize=4096)
def _units(millis: bool, value: str) -> int:
    amount = parse_quantity(value)
    if millis:
        with decimal.localcontext(decimal.Context(prec=len(value) + 50)):
            amount *= 1000  # exact: the precision covers every digit the text can carry
    return math.ceil(amount)


def vector(raw: Mapping[str, Any] | None) -> ResourceVector:
    result: ResourceVector = {}
    for name, value in (raw or {}).items():
        try:
            result[name] = quantity_units(name, value)
        except QuantityError as error:
            raise ValueError(f"{name}={error.value!r} is {error.reason}") from error
    return result


def add_into(total: ResourceVector, more: Mapping[str, int], sign: int = 1) -> None:
    for name, amount in more.items():
        total[name] = total.get(name, 0) + sign * amount


def _maximum(vectors: Iterable[ResourceVector]) -> ResourceVector:
    result: ResourceVector = {}
    for each in vectors:
        for name, amount in each.items():
            result[name] = max(result.get(name, 0), amount)
    return result


def pod_requests(spec: Mapping[str, Any]) -> ResourceVector:
    """Effective requests of a pod: max(sum of containers + sidecars, each init) + overhead."""
    containers = [
        vector((c.get("resources") or {}).get("requests")) for c in spec.get("containers") or []
    ]
    total: ResourceVector = {}
    for each in containers:
        add_into(total, each)
    init_vectors = []
    sidecars: ResourceVector = {}
    for init in spec.get("initContainers") or []:
        requested = vector((init.get("resources") or {}).get("requests"))
        if init.get("restartPolicy") == "Always":
            add_into(sidecars, requested)
        else:
            combined = dict(requested)
            add_into(combined, sidecars)
            init_vectors.append(combined)
    add_into(total, sidecars)
    effective = _maximum([total, *init_vectors])
    add_into(effective, vector(spec.get("overhead")))
    effective[PODS] = 1
    return effective
