"""Compare-and-swap on an object's spec, not its whole resourceVersion.

A JSON Patch that opens with ``test /metadata/uid`` and ``test /metadata/generation`` applies
only if the object is still the one the writer read and its spec unchanged since: the
apiserver re-applies a patch inside its own optimistic retry loop, so the tests are evaluated
against the object as it is committed. The UID matters because an object deleted and created
again under the same name starts counting generations afresh and can reach the one the
writer read. Writes to the status subresource leave the generation alone, so they no longer
make a spec writer start over, as a resourceVersion precondition would.

A failed ``test`` comes back as a bare 422; the object is read once to tell a lost race
(raised as ``Conflict``; ``NotFound`` if it is gone) from a patch that is really invalid
(re-raised).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubeio.errors import Conflict, Invalid
from kubeio.rest import JSON, JSON_PATCH, KubeApi


def patch_if_spec_unchanged(
    api: KubeApi, path: str, uid: str, generation: int, operations: list[dict[str, Any]]
) -> JSON:
    """Apply ``operations`` if the object is still ``uid`` at ``generation``; the object as
    written."""
    written: JSON = _guarded(api, path, uid, generation, operations, api.patch)
    return written


def apply_if_spec_unchanged(
    api: KubeApi, path: str, uid: str, generation: int, operations: list[dict[str, Any]]
) -> None:
    """``patch_if_spec_unchanged`` for a writer that knows what its write makes of the spec
    (it moves the generation by one if it changes anything): the answer is not decoded."""
    _guarded(api, path, uid, generation, operations, api.patch_unread)


def _guarded(
    api: KubeApi,
    path: str,
    uid: str,
    generation: int,
    operations: list[dict[str, Any]],
    send: Callable[[str, Any, str], Any],
) -> Any:
    guarded = [
        {"op": "test", "path": "/metadata/uid", "value": uid},
        {"op": "test", "path": "/metadata/generation", "value": generation},
        *operations,
    ]
    try:
        return send(path, guarded, JSON_PATCH)
    except Invalid as error:
        metadata = api.get(path).get("metadata") or {}
        now_uid = str(metadata.get("uid", ""))
        now = int(metadata.get("generation") or 0)
        if now_uid != uid:
            raise Conflict(409, f"{path}: object replaced (UID {uid} -> {now_uid})") from error
        if now != generation:
            raise Conflict(
                409, f"{path}: spec changed (generation {generation} -> {now})"
            ) from error
        raise
