"""Path logic and the build step of localcluster.binaries (a fake ``go`` stands in)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from localcluster import binaries

VERSION = "v1.37.2"


def make_executable(path: Path, text: str = "#!/bin/sh\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_cache_root_precedence(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert binaries.cache_root({"HOME": home}) == Path(home) / ".cache" / "vaclab"
    assert binaries.cache_root({"HOME": home, "XDG_CACHE_HOME": "/x"}) == Path("/x/vaclab")
    env = {"HOME": home, "XDG_CACHE_HOME": "/x", "VACLAB_CACHE_DIR": "/v"}
    assert binaries.cache_root(env) == Path("/v")
    assert binaries.controlplane_dir(VERSION, env) == Path("/v/controlplane") / VERSION


def test_build_command_matches_the_shared_go_build_cache_flags() -> None:
    out = Path("/c/.kube-apiserver.tmp")
    assert binaries.build_command("kube-apiserver", VERSION, out) == [
        "go",
        "build",
        "-trimpath",
        "-ldflags",
        "-X k8s.io/component-base/version.gitVersion=v1.37.2"
        " -X k8s.io/component-base/version.gitMajor=1"
        " -X k8s.io/component-base/version.gitMinor=37"
        " -X k8s.io/component-base/version.gitTreeState=clean",
        "-o",
        str(out),
        "k8s.io/kubernetes/cmd/kube-apiserver",
    ]
    assert binaries.build_command("etcd", VERSION, out) == [
        "go",
        "build",
        "-trimpath",
        "-o",
        str(out),
        "go.etcd.io/etcd/server/v3",
    ]
    assert binaries.build_env({"PATH": "/bin"}) == {"PATH": "/bin", "CGO_ENABLED": "0"}


def test_versions_and_components_are_validated() -> None:
    assert binaries.parse_version("v1.37.2") == ("1", "37")
    with pytest.raises(ValueError):
        binaries.parse_version("latest")
    with pytest.raises(ValueError, match="kubelet"):
        binaries.locate("kubelet", VERSION, {})
    assert binaries.select_components(None) == list(binaries.COMPONENTS)
    assert binaries.select_components(["kube-scheduler", " etcd"]) == ["etcd", "kube-scheduler"]


def test_kubebuilder_assets_win_when_they_hold_the_binary(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    make_executable(assets / "etcd")
    env = {"VACLAB_CACHE_DIR": str(tmp_path / "cache"), "KUBEBUILDER_ASSETS": str(assets)}
    etcd = binaries.locate("etcd", VERSION, env)
    assert (etcd.path, etcd.source, etcd.exists) == (assets / "etcd", "KUBEBUILDER_ASSETS", True)
    scheduler = binaries.locate("kube-scheduler", VERSION, env)
    assert scheduler.source == "cache"
    assert scheduler.path == tmp_path / "cache" / "controlplane" / VERSION / "kube-scheduler"
    with pytest.raises(binaries.MissingBinaryError, match="make controlplane"):
        binaries.find_binary("kube-scheduler", VERSION, env)


FAKE_GO = """#!/bin/sh
# Records its arguments, writes the -o file, fails if FAKE_GO_FAIL is set.
echo "$PWD $CGO_ENABLED $*" >> "$FAKE_GO_LOG"
while [ $# -gt 0 ]; do
  if [ "$1" = "-o" ]; then out="$2"; fi
  shift
done
printf 'partial' > "$out"
if [ -n "$FAKE_GO_FAIL" ]; then echo "compile error: boom"; exit 3; fi
chmod +x "$out"
"""


@pytest.fixture
def fake_go_env(tmp_path: Path) -> dict[str, str]:
    make_executable(tmp_path / "bin" / "go", FAKE_GO)
    return {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "VACLAB_CACHE_DIR": str(tmp_path / "cache"),
        "FAKE_GO_LOG": str(tmp_path / "go.log"),
        "HOME": str(tmp_path),
    }


def test_build_renames_into_place_and_skips_existing(
    tmp_path: Path, fake_go_env: dict[str, str]
) -> None:
    paths = binaries.ensure_binaries(["etcd", "kube-scheduler"], VERSION, env=fake_go_env)
    cache = tmp_path / "cache" / "controlplane" / VERSION
    assert paths == {"etcd": cache / "etcd", "kube-scheduler": cache / "kube-scheduler"}
    assert sorted(p.name for p in cache.iterdir()) == ["etcd", "kube-scheduler"]
    calls = (tmp_path / "go.log").read_text().splitlines()
    assert len(calls) == 2
    assert all(c.startswith(f"{binaries.GOBUILD_DIR} 0 build -trimpath") for c in calls)
    # A second run builds nothing.
    binaries.ensure_binaries(["etcd", "kube-scheduler"], VERSION, env=fake_go_env)
    assert len((tmp_path / "go.log").read_text().splitlines()) == 2


def test_failed_build_leaves_no_partial_binary(tmp_path: Path, fake_go_env: dict[str, str]) -> None:
    env = {**fake_go_env, "FAKE_GO_FAIL": "1"}
    with pytest.raises(binaries.BuildError, match="compile error: boom"):
        binaries.build_binary("kube-apiserver", VERSION, env=env)
    cache = tmp_path / "cache" / "controlplane" / VERSION
    assert list(cache.iterdir()) == []


def test_each_component_is_logged_with_its_own_version(
    fake_go_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    assert binaries.component_version("etcd", VERSION) == "v3.7.0"  # the real go.mod's
    assert binaries.component_version("helm", VERSION) == binaries.HELM_VERSION == "v3.22.0"
    assert binaries.component_version("kube-apiserver", VERSION) == VERSION
    caplog.set_level("INFO", logger="localcluster.binaries")
    binaries.ensure_binaries(["etcd", "kube-scheduler"], VERSION, env=fake_go_env)
    said = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in said if m.startswith("building")] == [
        "building etcd v3.7.0",
        "building kube-scheduler v1.37.2",
    ]
    assert [" ".join(m.split()[:3]) for m in said if m.startswith("built")] == [
        "built etcd v3.7.0",
        "built kube-scheduler v1.37.2",
    ]


def test_required_version_reads_single_and_block_requires() -> None:
    go_mod = (
        "module x\n\nrequire example.com/a v1.2.3\n"
        "require (\n\tgo.etcd.io/etcd/server/v3 v3.7.0 // indirect\n)\n"
    )
    assert binaries.required_version(go_mod, "example.com/a") == "v1.2.3"
    assert binaries.required_version(go_mod, binaries.ETCD_MODULE) == "v3.7.0"
    with pytest.raises(ValueError, match="does not require"):
        binaries.required_version(go_mod, "example.com/missing")
