"""helm as a buildable component of localcluster.binaries (a fake ``go`` stands in)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from localcluster import binaries

VERSION = "v1.37.2"

# `go install pkg@version` takes no -o: it writes $GOBIN/<name>.
FAKE_GO = """#!/bin/sh
echo "$PWD $CGO_ENABLED $GOBIN $*" >> "$FAKE_GO_LOG"
printf 'partial' > "$GOBIN/helm"
if [ -n "$FAKE_GO_FAIL" ]; then echo "module lookup disabled"; exit 1; fi
chmod +x "$GOBIN/helm"
"""


@pytest.fixture
def fake_go_env(tmp_path: Path) -> dict[str, str]:
    go = tmp_path / "bin" / "go"
    go.parent.mkdir()
    go.write_text(FAKE_GO)
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    return {
        "PATH": f"{go.parent}:{os.environ['PATH']}",
        "VACLAB_CACHE_DIR": str(tmp_path / "cache"),
        "FAKE_GO_LOG": str(tmp_path / "go.log"),
        "HOME": str(tmp_path),
    }


def test_helm_is_built_by_make_controlplane_after_the_control_plane() -> None:
    assert binaries.COMPONENTS[-1] == binaries.HELM
    assert binaries.select_components(None)[-1] == "helm"


def test_helm_is_go_installed_at_its_own_version_with_the_version_stamped() -> None:
    argv = binaries.build_command("helm", VERSION, Path("/c/.helm.building-1/helm"))
    assert argv == [
        "go",
        "install",
        "-trimpath",
        "-ldflags",
        "-X helm.sh/helm/v3/internal/version.version=v3.22.0"
        " -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
        " -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37"
        " -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
        " -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37",
        "helm.sh/helm/v3/cmd/helm@v3.22.0",
    ]
    assert binaries.ldflags("helm", VERSION) == argv[4]
    env = binaries.build_env({"PATH": "/bin"}, gobin=Path("/c/.helm.building-1"))
    assert env == {"PATH": "/bin", "CGO_ENABLED": "0", "GOBIN": "/c/.helm.building-1"}


def test_helm_lands_in_the_control_plane_cache_and_is_skipped_once_there(
    tmp_path: Path, fake_go_env: dict[str, str]
) -> None:
    paths = binaries.ensure_binaries(["helm"], VERSION, env=fake_go_env)
    cache = tmp_path / "cache" / "controlplane" / VERSION
    assert paths == {"helm": cache / "helm"}
    # The scratch GOBIN folder is gone: only the binary is left.
    assert [p.name for p in cache.iterdir()] == ["helm"]
    [call] = (tmp_path / "go.log").read_text().splitlines()
    assert call.startswith(f"{binaries.GOBUILD_DIR} 0 {cache}/.helm.building-")
    assert call.endswith("helm.sh/helm/v3/cmd/helm@v3.22.0")
    binaries.ensure_binaries(["helm"], VERSION, env=fake_go_env)
    assert len((tmp_path / "go.log").read_text().splitlines()) == 1


def test_a_failed_helm_build_leaves_neither_binary_nor_scratch_folder(
    tmp_path: Path, fake_go_env: dict[str, str]
) -> None:
    env = {**fake_go_env, "FAKE_GO_FAIL": "1"}
    with pytest.raises(binaries.BuildError, match="module lookup disabled"):
        binaries.build_binary("helm", VERSION, env=env)
    assert list((tmp_path / "cache" / "controlplane" / VERSION).iterdir()) == []
