"""Where the tools look for a cluster, and what they say when there is none: no server."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import urllib3
import yaml

from kubeio.config import NoClusterConfig, find_kubeconfig, load_client_configuration


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Neither KUBECONFIG nor in-cluster variables; an empty home."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def kubeconfig(path: Path, *, insecure: bool = False) -> Path:
    cluster: dict[str, object] = {"server": "https://127.0.0.1:1"}
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


def test_without_any_kubeconfig_the_message_says_how_to_point_at_one(no_cluster: Path) -> None:
    with pytest.raises(NoClusterConfig) as daemon:
        load_client_configuration()
    assert str(daemon.value) == (
        "no kubeconfig found (--kubeconfig or KUBECONFIG) and not running in a cluster "
        "(KUBERNETES_SERVICE_HOST is not set): pass --kubeconfig FILE or set KUBECONFIG"
    )
    with pytest.raises(NoClusterConfig, match=r"\(--kubeconfig, KUBECONFIG or ~/.kube/config\)"):
        load_client_configuration(home=True)


def test_a_missing_kubeconfig_path_says_so(
    no_cluster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = no_cluster / "absent"
    with pytest.raises(NoClusterConfig) as flag:
        load_client_configuration(str(absent))
    assert str(flag.value) == f"kubeconfig not found: --kubeconfig {absent} does not exist"
    monkeypatch.setenv("KUBECONFIG", str(absent))
    with pytest.raises(NoClusterConfig) as env:
        load_client_configuration()
    assert str(env.value) == f"kubeconfig not found: KUBECONFIG={absent} does not exist"
    # A KUBECONFIG list is merged; the files that are missing are skipped, as kubectl does.
    real = kubeconfig(no_cluster / "config")
    monkeypatch.setenv("KUBECONFIG", f"{absent}:{real}")
    assert load_client_configuration().host == "https://127.0.0.1:1"


def test_home_kubeconfig_is_kubectls_fallback_only(no_cluster: Path) -> None:
    (no_cluster / ".kube").mkdir()
    home = kubeconfig(no_cluster / ".kube" / "config")
    assert find_kubeconfig(None, home=True) == (str(home), "~/.kube/config")
    assert find_kubeconfig(None) == (None, "")
    assert find_kubeconfig("/x", home=True) == ("/x", "--kubeconfig")


def test_urllib3_retries_only_statuses_that_ask_for_it(no_cluster: Path) -> None:
    configuration = load_client_configuration(str(kubeconfig(no_cluster / "config")))
    retries = configuration.retries
    assert isinstance(retries, urllib3.Retry)
    assert (retries.connect, retries.read, retries.other) == (0, 0, 0)
    assert retries.is_retry("GET", 429, has_retry_after=True)
    assert not retries.is_retry("GET", 500, has_retry_after=False)
    assert not retries.is_retry("POST", 429, has_retry_after=True)
    assert not retries.raise_on_status


def test_insecure_kubeconfig_silences_urllib3s_per_request_warning(no_cluster: Path) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        secure = load_client_configuration(str(kubeconfig(no_cluster / "secure")))
        assert secure.verify_ssl
        warnings.warn("before", urllib3.exceptions.InsecureRequestWarning, stacklevel=1)
        insecure = load_client_configuration(str(kubeconfig(no_cluster / "i", insecure=True)))
        assert not insecure.verify_ssl
        warnings.warn("after", urllib3.exceptions.InsecureRequestWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["before"]
