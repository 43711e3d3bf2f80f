"""``--preemption`` / ``--no-preemption``, on the command line or in the config file."""

from __future__ import annotations

from pathlib import Path

from kubeio.daemon import parse_args_with_config
from scheduler.cli import build_parser, config_from_args


def _config(*argv: str) -> bool:
    return config_from_args(parse_args_with_config(build_parser(), list(argv))).preemption


def test_preemption_is_on_unless_turned_off(tmp_path: Path) -> None:
    assert _config() is True
    assert _config("--no-preemption") is False
    config = tmp_path / "scheduler.yaml"
    config.write_text("preemption: false\n")
    assert _config("--config", str(config)) is False
    assert _config("--config", str(config), "--preemption") is True
