"""Config and profile values are checked against the ranges declared beside their fields when
the plan is made: a bad value is a usage error (exit 2) before any cell starts."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import pytest

from baselines import contract
from baselines.contract import Choice, Count, Fraction, Range, RangeError, field_ranges
from benchmark import run
from benchmark.harness import profiles, registry
from benchmark.harness.registry import BaselineSpec


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run.main(argv)
    assert exit_info.value.code == run.EXIT_USAGE
    return capsys.readouterr().err


def test_a_negative_batch_size_stops_before_any_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--profile", "smoke", "--algos", "bc-pixels", "--results", str(tmp_path / "r")]
    error = usage_error([*argv, "--set", "batch_size=-5"], capsys)
    assert "bc-pixels's config: out of range: batch_size=-5 (valid: >= 1)" in error
    assert not (tmp_path / "r").exists()  # nothing built, no cell folder


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("critic_tau=0", "critic_tau=0.0 (valid: in (0, 1])"),
        ("discount=1.5", "discount=1.5 (valid: in [0, 1])"),
        ("actor_lr=-1e-3", "actor_lr=-0.001 (valid: > 0)"),
        ("updates=0", "profile 'smoke': out of range: updates=0 (valid: >= 1)"),
        ("precision=fp16", "precision='fp16' (valid: one of fp32, bf16, auto)"),
    ],
)
def test_out_of_range_values_name_field_value_and_range(
    item: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--plan", "--profile", "smoke", "--algos", "cql-curl", "--set", item]
    assert message in usage_error(argv, capsys)


def test_every_built_in_default_is_within_its_declared_range() -> None:
    for name in registry.names():
        config = registry.get(name).default_config()
        contract.check(config, name)
        assert "batch_size" in field_ranges(type(config)), name  # declared for every baseline
    for profile in profiles.PROFILES.values():
        contract.check(profile, profile.name)
    # A subclass that only changes a default keeps its base's range.
    state = registry.get("sac-state-offline").config_class()
    assert field_ranges(state)["critic_tau"] == Range(0, 1, low_open=True)
    assert field_ranges(registry.get("bc-pixels").config_class())["policy"] == Choice(
        ("deterministic", "gaussian")
    )


def test_ranges_include_and_exclude_their_bounds() -> None:
    fraction = Range(0, 1, low_open=True)
    assert fraction.contains(1.0) and not fraction.contains(0.0) and not fraction.contains(1.01)
    assert not Range(low=1).contains(float("nan")) and not Range(low=1).contains(True)
    with pytest.raises(RangeError, match=r"x: out of range: tau=0.0 \(valid: in \(0, 1\]\)"):
        contract.check(PluginConfig(tau=0.0), "x")


# -- a plugin's config gets the same check by declaring its ranges --------------------------
@dataclasses.dataclass(frozen=True)
class PluginConfig:
    batch_size: Count = 4
    tau: Fraction = 0.5
    mode: Literal["a", "b"] = "a"


def test_a_plugins_declared_ranges_are_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.names()  # the built-ins first
    spec = BaselineSpec(
        "test-plugin", f"{__name__}:PluginConfig", f"{__name__}:PluginConfig", True, "tests"
    )
    monkeypatch.setitem(registry._REGISTRY, spec.name, spec)
    argv = ["--plan", "--profile", "smoke", "--algos", spec.name]
    assert "test-plugin's config: out of range: tau=1.5" in usage_error(
        [*argv, "--set", "tau=1.5"], capsys
    )
    assert run.main(argv) == 0
