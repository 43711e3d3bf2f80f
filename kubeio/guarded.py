"""Compare-and-swap on an object's spec, not its whole resourceVersion.

A JSON Patch that opens with ``test /metadata/generation`` applies only if the spec is still
the one the writer read: the apiserver re-applies a patch inside its own optimistic retry loop,
so the test is evaluated against the object as it is committed. Writes to the status
subresource leave the generation alone, so they no longer make a spec writer start over, as a
resourceVersion precondition would.

A failed ``test`` comes back as a bare 422; the object is read once to tell a lost race
(raised as ``Conflict``) from a patch that is really invalid (re-raised).
"""

from __future__ import annotations

from typing import Any

from kubeio.errors import Conflict, Invalid
from kubeio.rest import JSON, JSON_PATCH, KubeApi


def patch_if_generation(
    api: KubeApi, path: str, generation: int, operations: list[dict[str, Any]]
) -> JSON:
    guarded = [{"op": "test", "path": "/metadata/generation", "value": generation}, *operations]
    try:
        return api.patch(path, guarded, JSON_PATCH)
    except Invalid as error:
        current = api.get(path)
        now = int((current.get("metadata") or {}).get("generation") or 0)
        if now != generation:
            raise Conflict(
                409, f"{path}: spec changed (generation {generation} -> {now})"
            ) from error
        raise
