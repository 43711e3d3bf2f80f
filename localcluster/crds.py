"""Install the project's CustomResourceDefinitions and wait until they are usable."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from localcluster import rawapi

log = logging.getLogger(__name__)

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class CRDNotReadyError(TimeoutError):
    """A CRD was not Established, or its resource not served, in time."""


def default_crd_dir() -> Path:
    """The repository's ``crds/`` folder (``$VACLAB_CRDS_DIR`` overrides).

    The package is installed editable from the repository, so ``crds/`` sits next to the
    ``localcluster`` package folder.
    """
    override = os.environ.get("VACLAB_CRDS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "crds"


def crd_files(paths: Iterable[Path] | None = None) -> list[Path]:
    """YAML files to install: each path is a file or a folder of ``*.yaml``/``*.yml``."""
    result: list[Path] = []
    for path in [default_crd_dir()] if paths is None else [Path(p) for p in paths]:
        if path.is_dir():
            result += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            result.append(path)
        else:
            raise FileNotFoundError(f"no CRD file or folder at {path}")
    return result


def load_crds(paths: Iterable[Path] | None = None) -> list[dict[str, Any]]:
    """The CustomResourceDefinition documents in :func:`crd_files` (other kinds skipped)."""
    crds: list[dict[str, Any]] = []
    for path in crd_files(paths):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                crds.append(doc)
    return crds


def apply_crd(api_client: ApiClient, crd: dict[str, Any]) -> dict[str, Any]:
    """Create ``crd``, or replace the existing one of that name; returns the stored object."""
    name = crd["metadata"]["name"]
    try:
        created = rawapi.request_ok(api_client, "POST", CRD_PATH, body=crd)
    except ApiException as exc:
        if exc.status != 409:
            raise
    else:
        log.info("created CRD %s", name)
        return dict(created)
    for _ in range(5):
        current = rawapi.request_ok(api_client, "GET", f"{CRD_PATH}/{name}")
        desired = {**crd, "metadata": {**crd["metadata"]}}
        desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        try:
            replaced = rawapi.request_ok(api_client, "PUT", f"{CRD_PATH}/{name}", body=desired)
        except ApiException as exc:
            if exc.status == 409:  # changed between our GET and PUT
                continue
            raise
        log.info("replaced CRD %s", name)
        return dict(replaced)
    raise RuntimeError(f"could not replace CRD {name}: kept conflicting")


def _condition(crd: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in crd.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def served_paths(crd: dict[str, Any]) -> list[str]:
    """The list URL of every served version of a CRD's resource (across namespaces)."""
    spec = crd["spec"]
    plural = spec["names"]["plural"]
    return [
        f"/apis/{spec['group']}/{version['name']}/{plural}"
        for version in spec["versions"]
        if version.get("served", True)
    ]


def wait_for_crd(api_client: ApiClient, crd: dict[str, Any], *, timeout: float = 60.0) -> float:
    """Wait until ``crd`` is Established and each served version lists with 200.

    Returns the seconds waited; raises :class:`CRDNotReadyError` with the last condition
    seen after ``timeout``.
    """
    name = crd["metadata"]["name"]
    started = time.monotonic()
    deadline = started + timeout
    established: dict[str, Any] | None = None
    pending = served_paths(crd)
    while True:
        if established is None or established.get("status") != "True":
            current = rawapi.request_ok(api_client, "GET", f"{CRD_PATH}/{name}")
            established = _condition(current, "Established")
            names = _condition(current, "NamesAccepted")
            if names is not None and names.get("status") == "False":
                raise CRDNotReadyError(f"CRD {name}: names not accepted: {names.get('message')}")
        if established is not None and established.get("status") == "True":
            pending = [
                p
                for p in pending
                if rawapi.request(api_client, "GET", p, query={"limit": "1"})[0] != 200
            ]
            if not pending:
                return time.monotonic() - started
        if time.monotonic() >= deadline:
            raise CRDNotReadyError(
                f"CRD {name} not ready after {timeout:.0f}s: Established={established}, "
                f"not served yet: {pending}"
            )
        time.sleep(0.1)


def install_crds(
    api_client: ApiClient, paths: Iterable[Path] | None = None, *, timeout: float = 60.0
) -> list[str]:
    """Apply every CRD in ``paths`` (default: the repository's ``crds/``) and wait for each
    to be Established and served. Returns the CRD names."""
    crds = load_crds(paths)
    if not crds:
        raise FileNotFoundError(f"no CustomResourceDefinition in {crd_files(paths)}")
    for crd in crds:
        apply_crd(api_client, crd)
    for crd in crds:
        seconds = wait_for_crd(api_client, crd, timeout=timeout)
        log.info("CRD %s established and served after %.2fs", crd["metadata"]["name"], seconds)
    return [crd["metadata"]["name"] for crd in crds]
