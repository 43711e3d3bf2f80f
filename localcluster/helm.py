"""Run helm (built into the control-plane cache by :mod:`localcluster.binaries`) against the
repository's chart and a local control plane.

- :data:`CHART_DIR`: the chart, ``helm/vaclab-bandwidth`` (``$VACLAB_CHART_DIR`` overrides);
- :func:`find_helm`: the cached helm binary, or :class:`MissingBinaryError` with the hint to
  run ``make controlplane``; :func:`helm_version` asks it its version;
- :class:`Helm`: one helm bound to a kubeconfig and to private config, cache and data folders,
  so that a user's repositories and plugins are neither read nor written: ``lint``,
  ``template`` (the rendered objects, parsed), ``install`` (no ``--wait``: simulated nodes run
  no pods), ``upgrade``, ``uninstall``, ``package``;
- ``python -m localcluster.helm ARGS...``: run the cached helm with ARGS (``make helm-lint``).

Values are passed as ``--set key=value`` pairs from a mapping, so tests read like the command
lines users type (``{"manager.bandwidth.network.uplink": 10000}``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localcluster.binaries import DEFAULT_KUBERNETES_VERSION, HELM, MissingBinaryError, find_binary

__all__ = [
    "CHART_DIR",
    "Helm",
    "HelmError",
    "MissingBinaryError",
    "find_helm",
    "helm_version",
    "set_flags",
]

SetValue = str | int | bool
"""A value for ``--set``: helm reads ``10000`` as a number and ``true`` as a boolean."""


def _chart_dir() -> Path:
    override = os.environ.get("VACLAB_CHART_DIR")
    if override:
        return Path(override)
    # Installed editable from the repository: helm/ sits next to the package folder.
    return Path(__file__).resolve().parent.parent / "helm" / "vaclab-bandwidth"


CHART_DIR = _chart_dir()


class HelmError(RuntimeError):
    """helm exited non-zero; the message holds the command and helm's own words."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        shown = " ".join(argv[1:])
        super().__init__(f"helm {shown} exited with {returncode}:\n{stderr.strip()}")


def find_helm(
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION, env: Mapping[str, str] | None = None
) -> Path:
    """The cached helm binary (built by ``make controlplane``)."""
    return find_binary(HELM, kubernetes_version, env)


def helm_version(binary: Path) -> str:
    """What ``binary`` says its version is (``v3.22.0``)."""
    argv = [str(binary), "version", "--template", "{{ .Version }}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise HelmError(argv, proc.returncode, proc.stderr)
    return proc.stdout.strip()


def set_flags(values: Mapping[str, SetValue]) -> list[str]:
    """``{"a.b": 1, "c": True}`` -> ``["--set", "a.b=1", "--set", "c=true"]``."""
    flags: list[str] = []
    for key, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        flags += ["--set", f"{key}={text}"]
    return flags


@dataclass(frozen=True)
class Helm:
    """A helm binary, the kubeconfig it talks to, and the folder holding its own state."""

    binary: Path
    home: Path
    kubeconfig: Path | None = None
    timeout_seconds: float = 60.0

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("KUBECONFIG", None)
        env.update(
            HELM_CONFIG_HOME=str(self.home / "config"),
            HELM_CACHE_HOME=str(self.home / "cache"),
            HELM_DATA_HOME=str(self.home / "data"),
        )
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def run(self, *args: str) -> str:
        """Run ``helm ARGS`` and return its standard output; :class:`HelmError` on failure."""
        return self.run_logged(*args)[0]

    def run_logged(self, *args: str) -> tuple[str, str]:
        """Like :meth:`run`, with helm's log (standard error; ``--debug`` fills it) too."""
        argv = [str(self.binary), *args]
        proc = subprocess.run(
            argv,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=self.timeout_seconds,
            check=False,
        )
        if proc.returncode != 0:
            raise HelmError(argv, proc.returncode, proc.stderr)
        return proc.stdout, proc.stderr

    def lint(self, chart: Path = CHART_DIR, values: Mapping[str, SetValue] | None = None) -> str:
        return self.run("lint", str(chart), "--strict", *set_flags(values or {}))

    def template(
        self,
        release: str = "vaclab-bandwidth",
        namespace: str = "vaclab-system",
        values: Mapping[str, SetValue] | None = None,
        *,
        chart: Path = CHART_DIR,
        include_crds: bool = False,
    ) -> list[dict[str, Any]]:
        """The objects ``helm template`` renders, in helm's order."""
        args = ["template", release, str(chart), "--namespace", namespace]
        if include_crds:
            args.append("--include-crds")
        rendered = self.run(*args, *set_flags(values or {}))
        return [doc for doc in yaml.safe_load_all(rendered) if isinstance(doc, dict)]

    def install(
        self,
        release: str,
        namespace: str,
        values: Mapping[str, SetValue] | None = None,
        *,
        chart: Path = CHART_DIR,
        skip_crds: bool = False,
    ) -> str:
        """``helm install`` without ``--wait``: the objects are admitted, no pod need run."""
        args = ["install", release, str(chart), "--namespace", namespace]
        if skip_crds:
            args.append("--skip-crds")
        return self.run(*args, *set_flags(values or {}))

    def upgrade(
        self,
        release: str,
        namespace: str,
        values: Mapping[str, SetValue] | None = None,
        *,
        chart: Path = CHART_DIR,
        reuse_values: bool = True,
    ) -> str:
        """``helm upgrade``, keeping the values given before unless ``reuse_values`` is off."""
        args = ["upgrade", release, str(chart), "--namespace", namespace]
        if reuse_values:
            args.append("--reuse-values")
        return self.run(*args, *set_flags(values or {}))

    def uninstall(self, release: str, namespace: str) -> str:
        return self.run("uninstall", release, "--namespace", namespace)

    def package(self, destination: Path, chart: Path = CHART_DIR) -> Path:
        """``helm package`` into ``destination``; returns the ``.tgz``."""
        before = set(destination.glob("*.tgz"))
        self.run("package", str(chart), "--destination", str(destination))
        [archive] = set(destination.glob("*.tgz")) - before
        return archive


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cached helm with ``argv``, its state kept out of the user's folders."""
    try:
        binary = find_helm()
    except MissingBinaryError as error:
        print(str(error), file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="vaclab-helm-") as home:
        kubeconfig = os.environ.get("KUBECONFIG")
        helm = Helm(binary, Path(home), Path(kubeconfig) if kubeconfig else None, 600.0)
        args = list(sys.argv[1:] if argv is None else argv)
        proc = subprocess.run([str(binary), *args], env=helm.environment(), check=False)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
