"""Flags, the config file, and the settings they make."""

from __future__ import annotations

from pathlib import Path

import pytest

from accounting.cli import parse_args, settings_from_args
from bandwidth.budget import LinkBudget, Usage


def test_defaults_are_the_seed_values() -> None:
    settings = settings_from_args(parse_args([]))
    assert settings.default_capacity == Usage(
        local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000)
    )
    assert settings.unbound_grace_seconds == 60
    assert settings.resync_period_seconds == 300
    assert settings.node_selector.is_empty()
    assert settings.annotation_keys.egress == "kubernetes.io/egress-bandwidth"
    assert settings.annotation_keys.ingress == "kubernetes.io/ingress-bandwidth"


def test_flags() -> None:
    args = parse_args(
        [
            "--default-network-ul-mbps=10000",
            "--default-local-dl-mbps=5",
            "--unbound-reservation-grace=3s",
            "--resync-period=1m30s",
            "--node-selector=pool=lab,!virtual",
            "--egress-annotation=ovn.kubernetes.io/egress_rate",
            "--workers=2",
        ]
    )
    settings = settings_from_args(args)
    assert settings.default_capacity.network == LinkBudget(10000, 1000)
    assert settings.default_capacity.local == LinkBudget(20000, 5)
    assert settings.unbound_grace_seconds == 3
    assert settings.resync_period_seconds == 90
    assert settings.node_selector.matches({"pool": "lab"})
    assert not settings.node_selector.matches({"pool": "lab", "virtual": "yes"})
    assert settings.annotation_keys.egress == "ovn.kubernetes.io/egress_rate"
    assert settings.workers == 2


def test_a_config_file_sets_defaults_that_flags_override(tmp_path: Path) -> None:
    config = tmp_path / "accounting.yaml"
    config.write_text(
        "default-network-ul-mbps: 2500\n"
        "default_network_dl_mbps: 2600\n"
        "unbound-reservation-grace: 2m\n"
        "node-selector: pool=lab\n"
    )
    settings = settings_from_args(
        parse_args(["--config", str(config), "--default-network-dl-mbps=99"])
    )
    assert settings.default_capacity.network == LinkBudget(2500, 99)
    assert settings.unbound_grace_seconds == 120
    assert str(settings.node_selector) == "pool=lab"


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--default-network-ul-mbps=-1"], "Mbps >= 0"),
        (["--unbound-reservation-grace=soon"], "duration"),
        (["--unbound-reservation-grace=500ms"], "at least 1s"),
        (["--node-selector=a in (b"], "unbalanced"),
        (["--workers=0"], ">= 1"),
    ],
)
def test_bad_flags_exit_with_a_message(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("colour: blue\n", "unknown setting 'colour'"),
        ("- a\n- b\n", "expected a mapping"),
        ("node-selector: [a, b]\n", "single value"),
        ("default-network-ul-mbps: many\n", "Mbps"),
    ],
)
def test_bad_config_files_exit_with_a_message(
    tmp_path: Path, content: str, complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    with pytest.raises(SystemExit):
        parse_args(["--config", str(config)])
    assert complaint in capsys.readouterr().err
