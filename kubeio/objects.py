"""Small readers of object metadata that every component needs the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUCCEEDED = "Succeeded"
FAILED = "Failed"
TERMINAL_PHASES = frozenset({SUCCEEDED, FAILED})
"""Pod phases after which a pod holds no resources and no bandwidth."""


def controller_reference(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ownerReference marked ``controller: true`` (the object's managing workload), or an
    empty mapping."""
    for reference in metadata.get("ownerReferences") or []:
        if isinstance(reference, Mapping) and reference.get("controller"):
            return reference
    return {}
