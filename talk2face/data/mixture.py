"""A mixture: several sources, each with a sampling weight and the tasks it may train.

Talk2Face trained one model on face-text pairs from many data sets, each supplying only the labels
it has; a mixture file says which source trains which task and how often it is drawn:

    sources:
      - {source: mmceleba.yaml, weight: 2.0, tasks: [caption, text_to_face, attributes]}
      - {source: utkface.yaml, weight: 1.0, tasks: [age]}
      - {source: {type: celeba, root: /data/celeba}, weight: 1.0, tasks: [attributes], name: celeba}

`source` is a source YAML file or an imagefolder directory (relative to the mixture file), or an
inline source mapping. `weight` is relative (normalised over the entries); `tasks` is a non-empty
subset of TASKS. The training loop draws an entry with probability weight / sum(weights), then a
record and one of the entry's tasks that the record has labels for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from talk2face.data.record import TASKS
from talk2face.data.sources import Source, open_source, source_from_dict
from talk2face.errors import UserError

_ENTRY_KEYS = {"source", "weight", "tasks", "name"}


@dataclass
class MixtureSource:
    """One entry of a mixture: an opened source, its relative weight and the tasks it trains."""

    source: Source
    weight: float
    tasks: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.source.name


@dataclass
class Mixture:
    """Sources drawn by weight; `path` is the mixture file (None when built in code)."""

    sources: list[MixtureSource]
    path: Path | None = None

    def probabilities(self) -> list[float]:
        """Each entry's sampling probability, in the order of `sources` (sums to 1)."""
        total = sum(s.weight for s in self.sources)
        return [s.weight / total for s in self.sources]


def check_weight_and_tasks(weight: Any, tasks: Any, where: str, known: Sequence[str] = TASKS) -> None:
    """The two keys every weighted source has, wherever it is written (a mixture file's entry, a
    training config's data.sources entry): a positive weight and a non-empty list of known tasks."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
        raise UserError(f"{where}.weight: expected a positive number, got {weight!r}")
    if not isinstance(tasks, (list, tuple)) or not tasks:
        raise UserError(f"{where}.tasks: expected a non-empty list of tasks from {list(known)}, got {tasks!r}")
    bad = [t for t in tasks if t not in known]
    if bad:
        raise UserError(f"{where}.tasks: unknown task(s) {bad}; tasks are {list(known)}")
    if len(set(tasks)) != len(tasks):
        raise UserError(f"{where}.tasks: a task is listed twice: {list(tasks)}")


def _parse_entry(entry: Any, base: Path, where: str) -> MixtureSource:
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a mapping with keys source, weight, tasks; got {entry!r}")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}; known: {sorted(_ENTRY_KEYS)}")
    for key in ("source", "tasks"):
        if key not in entry:
            raise UserError(f"{where}: missing key {key!r}")
    weight, tasks = entry.get("weight", 1.0), entry["tasks"]
    check_weight_and_tasks(weight, tasks, where)
    spec = entry["source"]
    if isinstance(spec, dict):
        source = source_from_dict(spec, base, f"{where}.source")
    elif isinstance(spec, str):
        try:
            source = open_source(spec, base)
        except UserError as err:  # say which mixture entry pointed there
            raise UserError(f"{where}.source: {err}") from None
    else:
        raise UserError(f"{where}.source: expected a file, a folder or a mapping, got {spec!r}")
    if "name" in entry:
        source.name = str(entry["name"])
    return MixtureSource(source, float(weight), tuple(tasks))


def load_mixture(path: str | Path) -> Mixture:
    """Read a mixture YAML file and open every source it lists.

    Args:
        path: the mixture file; relative source paths are resolved against its folder.
    Returns:
        the Mixture; a bad entry raises UserError naming the file, the entry index and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"mixture file not found: {path}")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(cfg, dict) or set(cfg) != {"sources"}:
        keys = sorted(cfg) if isinstance(cfg, dict) else cfg
        raise UserError(f"{path}: expected a mapping with the single key 'sources', got {keys!r}")
    entries = cfg["sources"]
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path}: 'sources' must be a non-empty list")
    sources = [_parse_entry(e, path.parent, f"{path}: sources[{i}]") for i, e in enumerate(entries)]
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"{path}: source name(s) {dupes} appear twice; give each entry a distinct 'name'")
    return Mixture(sources, path)


def is_mixture_file(path: str | Path) -> bool:
    """Whether `path` is a YAML file with a top-level `sources` list (a mixture, not a source)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(cfg, dict) and "sources" in cfg and "type" not in cfg
