"""Typed configs: YAML + dotted overrides, typed coercion, unknown keys named."""

from dataclasses import dataclass, field

import pytest

from talk2face.config import ConfigError, load_config


@dataclass
class Inner:
    lr: float = 1.0
    tasks: list[str] = field(default_factory=list)
    mode: str = "bf16"
    resume: str | None = None


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    steps: int = 3


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 7\ninner: {lr: 0.5}\n")
    cfg = load_config(Outer, path, ["--inner.tasks=[age, caption]", "--inner.mode=no", "--inner.resume=latest"])
    assert cfg == Outer(Inner(0.5, ["age", "caption"], "no", "latest"), 7)  # "no" stays a string


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner: {lrr: 0.5}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*lrr"):
        load_config(Outer, path)


@pytest.mark.parametrize("override, message", [("--steps=1.5", "integer"), ("--steps=many", "int"), ("steps=1", "dotted")])
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Outer, None, [override])


def test_bare_yaml_boolean_for_a_string_asks_for_quotes(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner: {mode: no}\n")
    with pytest.raises(ConfigError, match="quote"):
        load_config(Outer, path)


@pytest.mark.parametrize("override", ["--steps=true", "--inner.lr=false"])
def test_a_boolean_is_not_a_number(override):
    with pytest.raises(ConfigError, match="boolean"):
        load_config(Outer, None, [override])
