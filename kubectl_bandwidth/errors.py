"""Failures the plugin reports as one line on stderr with exit code 1, never a traceback.

PluginError               anything the user can act on; ``str()`` is the whole message
├── NoCluster             no usable kubeconfig, context or in-cluster credentials
├── Unreachable           the apiserver did not answer
├── CrdMissing            the Bandwidth CustomResourceDefinition is not served
├── AccessDenied          403/401 on one verb and resource: says which
├── NotFoundError         the pod, node or Bandwidth object asked for does not exist
├── ServerRefused         any other answer of the apiserver, with verb, resource and status
└── BadInput              a ``what-if`` file that cannot be read or is not a workload

``api_failure`` turns a ``kubeio.errors.ApiError`` raised by one request into one of these; it
is pure, so the messages are tested with real errors from a real apiserver.
"""

from __future__ import annotations

from kubeio.errors import ApiError, Forbidden, NotFound
from kubeio.errors import Unreachable as ApiUnreachable
from kubeio.resources import BANDWIDTHS, Resource

CRD_FILE_HINT = "kubectl apply -f crds/ (or install the Helm chart)"


class PluginError(Exception):
    """An error with a message meant for the person at the terminal."""


class NoCluster(PluginError):
    pass


class Unreachable(PluginError):
    pass


class CrdMissing(PluginError):
    def __init__(self, resource: Resource, server: str = "") -> None:
        where = f" on {server}" if server else ""
        hint = (
            CRD_FILE_HINT if resource == BANDWIDTHS else "is its CustomResourceDefinition applied?"
        )
        super().__init__(f"{qualified_name(resource)} is not installed{where}: {hint}")
        self.resource = resource


class AccessDenied(PluginError):
    def __init__(self, verb: str, resource: Resource, namespace: str | None, detail: str) -> None:
        scope = f"in namespace {namespace}" if namespace else "cluster-wide"
        super().__init__(
            f"access denied: cannot {verb} {qualified_name(resource)} {scope} ({detail})"
        )
        self.verb = verb
        self.resource = resource
        self.namespace = namespace


class NotFoundError(PluginError):
    pass


class ServerRefused(PluginError):
    pass


class BadInput(PluginError):
    pass


def qualified_name(resource: Resource) -> str:
    """``bandwidths.networking.vaclab.org``, ``pods``, ``replicasets.apps``: as RBAC names it."""
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


def _names_an_object(error: ApiError) -> bool:
    """A 404 about one missing object names it in ``details``; an unserved resource does not."""
    details = error.body.get("details") if isinstance(error.body, dict) else None
    return isinstance(details, dict) and bool(details.get("name"))


def api_failure(
    error: ApiError,
    *,
    verb: str,
    resource: Resource,
    namespace: str | None = None,
    name: str | None = None,
    server: str = "",
) -> PluginError:
    """The one-line error for ``error``, raised by ``verb`` on ``resource`` (and ``name``)."""
    if isinstance(error, Forbidden):
        if error.status == 401:
            return AccessDenied(verb, resource, namespace, "401 Unauthorized: credentials rejected")
        return AccessDenied(verb, resource, namespace, f"403 Forbidden: {error.message}")
    if isinstance(error, NotFound):
        if name is not None and _names_an_object(error):
            where = f" in namespace {namespace}" if namespace else ""
            return NotFoundError(f"{qualified_name(resource)} {name!r} not found{where}")
        return CrdMissing(resource, server)
    if isinstance(error, ApiUnreachable):
        return Unreachable(
            f"cannot reach the apiserver{' at ' + server if server else ''}: {error.message}"
        )
    target = f"{qualified_name(resource)}/{name}" if name else qualified_name(resource)
    return ServerRefused(f"{verb} {target} failed: {error}")
