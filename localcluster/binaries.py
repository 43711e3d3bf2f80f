"""Find or build the control-plane binaries (etcd, kube-apiserver, kube-scheduler, ...).

Binaries live in a cache outside the work tree::

    ${VACLAB_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/vaclab}/controlplane/<kubernetes version>/

and are built from source with the Go toolchain from the wrapper module in
``localcluster/gobuild`` (pinned Kubernetes version, ``tool`` directives). A directory named
by ``KUBEBUILDER_ASSETS`` (the envtest layout: ``etcd``, ``kube-apiserver``, ``kubectl``) is
used in preference to the cache for the binaries it holds.

``helm`` (for the chart's tests) is cached beside them but built from its own module at
:data:`HELM_VERSION` with ``go install``, so that its dependencies are the ones helm was
released with, not the wrapper module's.

The path logic (pure functions) is kept apart from :func:`build_binary`, the only function
that runs a subprocess.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_KUBERNETES_VERSION = "v1.37.2"
"""Must match the ``k8s.io/kubernetes`` version pinned in ``localcluster/gobuild/go.mod``."""

ETCD = "etcd"
KUBE_APISERVER = "kube-apiserver"
KUBE_SCHEDULER = "kube-scheduler"
KUBE_CONTROLLER_MANAGER = "kube-controller-manager"
HELM = "helm"

HELM_VERSION = "v3.22.0"
HELM_KUBE_VERSION = ("1", "37")
"""The Kubernetes version helm assumes without a cluster (``helm template``), stamped as helm's
own release build does: from the ``k8s.io/client-go`` v0.37 in helm v3.22.0's go.mod."""

COMPONENTS: tuple[str, ...] = (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER, HELM)
"""Every binary ``build`` knows, in build order."""

ETCD_MODULE = "go.etcd.io/etcd/server/v3"

GO_PACKAGES: Mapping[str, str] = {
    ETCD: ETCD_MODULE,
    KUBE_APISERVER: "k8s.io/kubernetes/cmd/kube-apiserver",
    KUBE_CONTROLLER_MANAGER: "k8s.io/kubernetes/cmd/kube-controller-manager",
    KUBE_SCHEDULER: "k8s.io/kubernetes/cmd/kube-scheduler",
    HELM: "helm.sh/helm/v3/cmd/helm",
}

GOBUILD_DIR = Path(__file__).resolve().parent / "gobuild"
"""The wrapper Go module the binaries are built from."""

MAKE_HINT = "run `make controlplane` (or `python -m localcluster build`) to build it"


class MissingBinaryError(FileNotFoundError):
    """A control-plane binary is neither in the cache nor in ``KUBEBUILDER_ASSETS``."""


class BuildError(RuntimeError):
    """``go build`` failed; the message holds the tail of its output."""


@dataclass(frozen=True)
class BinaryLocation:
    """Where a component's binary is (``path``) and whether it exists yet."""

    component: str
    path: Path
    source: str  # "cache" or "KUBEBUILDER_ASSETS"

    @property
    def exists(self) -> bool:
        return _is_executable(self.path)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """``$VACLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/vaclab``, else ``~/.cache/vaclab``."""
    env = os.environ if env is None else env
    if env.get("VACLAB_CACHE_DIR"):
        return Path(env["VACLAB_CACHE_DIR"]).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path(env.get("HOME", "~")).expanduser() / ".cache"
    return base / "vaclab"


def controlplane_dir(
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION, env: Mapping[str, str] | None = None
) -> Path:
    """The cache folder holding the binaries of one Kubernetes version."""
    return cache_root(env) / "controlplane" / kubernetes_version


def _check_component(component: str) -> None:
    if component not in GO_PACKAGES:
        known = ", ".join(COMPONENTS)
        raise ValueError(f"unknown control-plane component {component!r} (known: {known})")


def locate(
    component: str,
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    env: Mapping[str, str] | None = None,
) -> BinaryLocation:
    """Where ``component`` is or would be built.

    ``KUBEBUILDER_ASSETS/<component>`` wins when it exists; otherwise the cache path is
    returned, whether or not the binary is there yet (see :attr:`BinaryLocation.exists`).
    """
    _check_component(component)
    env = os.environ if env is None else env
    assets = env.get("KUBEBUILDER_ASSETS")
    if assets:
        candidate = Path(assets).expanduser() / component
        if _is_executable(candidate):
            return BinaryLocation(component, candidate, "KUBEBUILDER_ASSETS")
    return BinaryLocation(component, controlplane_dir(kubernetes_version, env) / component, "cache")


def find_binary(
    component: str,
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    env: Mapping[str, str] | None = None,
) -> Path:
    """The path of an existing ``component`` binary, or :class:`MissingBinaryError`."""
    location = locate(component, kubernetes_version, env)
    if not location.exists:
        assets = (os.environ if env is None else env).get("KUBEBUILDER_ASSETS")
        also = f" nor in KUBEBUILDER_ASSETS={assets}" if assets else ""
        raise MissingBinaryError(f"{component} not found at {location.path}{also}: {MAKE_HINT}")
    return location.path


def parse_version(kubernetes_version: str) -> tuple[str, str]:
    """``"v1.37.2"`` -> ``("1", "37")``; raises ``ValueError`` on anything else."""
    parts = kubernetes_version.removeprefix("v").split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise ValueError(
            f"not a Kubernetes version: {kubernetes_version!r} (want vMAJOR.MINOR.PATCH)"
        )
    return parts[0], parts[1]


def ldflags(component: str, kubernetes_version: str) -> str | None:
    """The ``-ldflags`` that stamp the version into Kubernetes binaries and helm (none for etcd)."""
    _check_component(component)
    if component == ETCD:
        return None
    if component == HELM:
        return _helm_ldflags()
    major, minor = parse_version(kubernetes_version)
    return " ".join(
        [
            f"-X k8s.io/component-base/version.gitVersion={kubernetes_version}",
            f"-X k8s.io/component-base/version.gitMajor={major}",
            f"-X k8s.io/component-base/version.gitMinor={minor}",
            "-X k8s.io/component-base/version.gitTreeState=clean",
        ]
    )


def _helm_ldflags() -> str:
    major, minor = HELM_KUBE_VERSION
    return " ".join(
        [
            f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
            f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor={major}",
            f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor}",
            f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor={major}",
            f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={minor}",
        ]
    )


def required_version(go_mod: str, module: str) -> str:
    """The version ``go_mod`` (the text of a go.mod) requires of ``module``."""
    for line in go_mod.splitlines():
        words = line.split("//")[0].split()
        if words[:1] == ["require"]:
            words = words[1:]
        if len(words) == 2 and words[0] == module:
            return words[1]
    raise ValueError(f"go.mod does not require {module}")


def component_version(
    component: str, kubernetes_version: str, gobuild_dir: Path = GOBUILD_DIR
) -> str:
    """The version of ``component`` that gets built: etcd's comes from the wrapper module's
    go.mod, helm's is :data:`HELM_VERSION`, the rest are Kubernetes' own."""
    _check_component(component)
    if component == ETCD:
        return required_version((gobuild_dir / "go.mod").read_text(), ETCD_MODULE)
    if component == HELM:
        return HELM_VERSION
    return kubernetes_version


def build_command(component: str, kubernetes_version: str, output: Path) -> list[str]:
    """The Go argv that writes ``component`` to ``output`` (run in :data:`GOBUILD_DIR`,
    ``CGO_ENABLED=0``).

    The flags are fixed so that Go's build cache is shared between builds of different
    components and between ``make controlplane`` runs.

    helm is ``go install``-ed at :data:`HELM_VERSION` (with its own go.mod, whatever module
    the working directory is in), which writes ``$GOBIN/helm`` and takes no ``-o``:
    ``output`` must then be named ``helm``, and :func:`build_env` sets ``GOBIN`` to its folder.
    """
    if component == HELM:
        package = f"{GO_PACKAGES[HELM]}@{HELM_VERSION}"
        return ["go", "install", "-trimpath", "-ldflags", _helm_ldflags(), package]
    flags = ldflags(component, kubernetes_version)
    argv = ["go", "build", "-trimpath"]
    if flags is not None:
        argv += ["-ldflags", flags]
    return [*argv, "-o", str(output), GO_PACKAGES[component]]


def build_env(
    base: Mapping[str, str] | None = None, *, gobin: Path | None = None
) -> dict[str, str]:
    """The environment ``go build`` runs with: the caller's plus ``CGO_ENABLED=0`` (and
    ``GOBIN`` for ``go install``)."""
    env = dict(os.environ if base is None else base)
    env["CGO_ENABLED"] = "0"
    if gobin is not None:
        env["GOBIN"] = str(gobin)
    return env


def select_components(only: Iterable[str] | None) -> list[str]:
    """The components to build, in :data:`COMPONENTS` order; ``None`` means all."""
    if only is None:
        return list(COMPONENTS)
    wanted = {c.strip() for c in only if c.strip()}
    for component in wanted:
        _check_component(component)
    return [c for c in COMPONENTS if c in wanted]


def build_binary(
    component: str,
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    *,
    output: Path | None = None,
    gobuild_dir: Path = GOBUILD_DIR,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Build ``component`` with ``go build`` into ``output`` (default: the cache path).

    The binary is written to a temporary name in the same folder and renamed into place
    only once ``go build`` succeeded, so an interrupted build never leaves a partial binary.
    Raises :class:`BuildError` with the tail of Go's output on failure.
    """
    target = output or controlplane_dir(kubernetes_version, env) / component
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.building-{os.getpid()}")
    # `go install` names the binary itself: helm gets a scratch folder of its own.
    gobin = scratch if component == HELM else None
    tmp = scratch / HELM if gobin is not None else scratch
    if gobin is not None:
        gobin.mkdir(exist_ok=True)
    argv = build_command(component, kubernetes_version, tmp)
    version = component_version(component, kubernetes_version, gobuild_dir)
    log.info("building %s %s: %s (in %s)", component, version, " ".join(argv), gobuild_dir)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            cwd=gobuild_dir,
            env=build_env(env, gobin=gobin),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.splitlines()[-40:])
            raise BuildError(
                f"go build of {component} failed with exit code {proc.returncode}:\n{tail}"
            )
        os.replace(tmp, target)
    finally:
        if gobin is not None:
            shutil.rmtree(gobin, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    log.info("built %s %s in %.1fs -> %s", component, version, time.monotonic() - started, target)
    return target


def ensure_binaries(
    components: Sequence[str] | None = None,
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    *,
    env: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Build, one after the other, each of ``components`` (default all) that is missing.

    Existing binaries (in the cache or ``KUBEBUILDER_ASSETS``) are skipped. Returns the path
    of every requested component.
    """
    paths: dict[str, Path] = {}
    for component in select_components(components):
        location = locate(component, kubernetes_version, env)
        if location.exists:
            log.info("%s: using %s (%s)", component, location.path, location.source)
            paths[component] = location.path
            continue
        paths[component] = build_binary(component, kubernetes_version, env=env)
    return paths
