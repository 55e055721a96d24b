"""Typed configs: nested dataclasses loaded from YAML, overridable from the command line.

    cfg = load_config(TrainConfig, "experiments/synface-small.yaml", ["--train.lr=3e-4"])

Unknown keys are an error that names the key and the file (or the override), so a typo never
silently trains with a default. `describe(cls)` lists every key with its default and the comment
beside its field: a trainer's `--help`.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import math
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from talk2face.errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A config file or override that does not match its dataclass."""


class RawOverride(str):
    """A command-line value, parsed as YAML only where the field is not a string (so `--x=no` stays "no")."""


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Turn a YAML/CLI value into the type the dataclass field declares."""
    origin = typing.get_origin(hint)
    if isinstance(value, RawOverride):
        if hint is str or (origin in (typing.Union, types.UnionType) and str in typing.get_args(hint) and value != "null"):
            return str(value)
        value = yaml.safe_load(value) if value else ""
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {hint.__name__}, got {value!r}")
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], where) if len(args) == 1 else value
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        _, val_hint = typing.get_args(hint) or (Any, Any)
        return {k: _coerce(v, val_hint, f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, bool):  # int(True) == 1: a bare `true` would silently be a number
            raise ConfigError(f"{where}: expected {hint.__name__}, got the boolean {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}") from None
        if hint is int and isinstance(value, float) and number != value:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return number
    if hint is str and isinstance(value, bool):
        # YAML 1.1 reads bare yes/no/on/off as booleans
        raise ConfigError(f"{where}: expected a string, got the boolean {value!r}; quote it (e.g. \"no\")")
    if hint is str and value is not None:
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from a nested dict; unknown keys raise ConfigError naming them."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; known: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def parse_overrides(argv: list[str]) -> dict[str, Any]:
    """`["--train.lr=3e-4", "--data.tasks=[age, caption]"]` -> nested dict (values parsed as YAML)."""
    nested: dict[str, Any] = {}
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            raise ConfigError(f"override {arg!r}: expected --dotted.key=value")
        key, raw = arg[2:].split("=", 1)
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = RawOverride(raw)
    return nested


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Load `cls` from a YAML file (optional) and apply `--dotted.key=value` overrides."""
    data: dict[str, Any] = {}
    where = "config"
    if path is not None:
        where = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
    if overrides:
        where += " + command-line overrides"
        data = _merge(data, parse_overrides(list(overrides)))
    return from_dict(cls, data, where)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The plain-dict form of a config (what is saved next to a checkpoint)."""
    return dataclasses.asdict(cfg)


def field_comments(cls: type) -> dict[str, str]:
    """Field name -> its comment in `cls`'s source: the trailing `# ...`, else the `# ...` lines just above it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (e.g. only bytecode installed): keys and defaults still listed
        return {}
    comments: dict[str, str] = {}
    above: list[str] = []  # comment lines since the last statement or blank line
    trailing: list[str] = []
    name: str | None = None  # the field whose statement is being read
    depth, line_start, previous = 0, True, None
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif tok.type == tokenize.COMMENT:
            (trailing if name else above).append(tok.string.lstrip("#").strip())
        elif tok.type == tokenize.NL:
            if previous != tokenize.COMMENT and name is None:  # a blank line parts a comment from what follows
                above.clear()
        elif tok.type == tokenize.NEWLINE:
            if name:
                comments[name] = " ".join(trailing or above)
            name, trailing = None, []
            above.clear()
        elif line_start and depth == 1 and tok.type == tokenize.NAME and tokens[i + 1].string == ":":
            name = tok.string
        line_start = tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT) or (
            line_start and tok.type in (tokenize.COMMENT, tokenize.NL))
        previous = tok.type
    return comments


def _flow_yaml(value: Any) -> str:
    """A value as it is written in a config file or a `--key=value` override."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=math.inf).removesuffix("...\n").strip()


def describe(cls: type, prefix: str = "") -> list[str]:
    """One line per key of dataclass `cls`, nested ones dotted: `optim.lr = 0.001  # peak learning rate`."""
    comments, hints = field_comments(cls), typing.get_type_hints(cls)
    lines: list[str] = []
    for f in dataclasses.fields(cls):
        key, hint, comment = prefix + f.name, hints[f.name], comments.get(f.name, "")
        args = typing.get_args(hint)
        if dataclasses.is_dataclass(hint):
            lines += [f"  {key}  # {comment}"] if comment else []
            lines += describe(hint, key + ".")
            continue
        if f.default is not dataclasses.MISSING:
            text = f"{key} = {_flow_yaml(f.default)}"
        elif f.default_factory is not dataclasses.MISSING:
            text = f"{key} = {_flow_yaml(f.default_factory())}"
        else:
            text = f"{key} (required)"
        lines.append(textwrap.fill(text + (f"  # {comment}" if comment else ""), width=100, initial_indent="  ",
                                   subsequent_indent="      ", break_long_words=False, break_on_hyphens=False))
        if typing.get_origin(hint) is list and args and dataclasses.is_dataclass(args[0]):  # a list of sections
            lines += describe(args[0], key + "[].")
    return lines
