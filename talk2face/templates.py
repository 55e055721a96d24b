"""Task templates: turn a FaceRecord into (prompt, target) text, and parse answers back.

Every task is one YAML file in templates/ (see templates/age.yaml for a commented example):

    task: age                        # the task's name (unique across files)
    requires: [age]                  # FaceRecord labels a record must have to train this task
    prompts:                         # paraphrases, one drawn at random per example
      - "{face} how old is this person?"
    target: "{age}"                  # the verbalizer: what the answer looks like
    parse: '^(?P<age>\\d+)$'          # optional: how an answer is read back (default: from target)
    unconditional: "..."             # optional: the prompt used when the condition is dropped (CFG)

Placeholders (and the record label each needs):
    {face}         the record's face (codes), or in a task that requires `edit`, the edit's SOURCE
                   face when it appears in a prompt; the answer `{face}` is the record's own face
    {text}         one of the record's captions (a text_to_face prompt)       needs captions
    {caption}      one of the record's captions (a caption answer)            needs captions
    {instruction}  one of the edit's instructions                             needs edit
    {age}          the age in whole years, e.g. "34"                          needs age
    {attributes}   the record's attributes as a fixed-order list              needs attributes
    {change}       the one change an edit makes: "eyeglasses yes", "age 45"   needs edit

Rendered text holds the literal `<face>` where a face goes; `Sample.prompt_faces` /
`Sample.target_faces` hold their codes in order, and `Vocab.encode` expands them.

A user adds a paraphrase or a whole new task (a new file, any name, using these placeholders)
without touching Python; `Templates.load` checks every file and names the file and placeholder
of any mistake.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from talk2face.data.record import ATTRIBUTES, FaceRecord
from talk2face.errors import UserError

FACE_TOKEN = "<face>"  # the placeholder text Vocab.encode expands (talk2face.vocab.FACE)

# placeholder -> FaceRecord label it needs (None: every record has a face)
PLACEHOLDERS: dict[str, str | None] = {
    "face": None, "text": "captions", "caption": "captions", "instruction": "edit",
    "age": "age", "attributes": "attributes", "change": "edit",
}
LABELS = ("captions", "age", "attributes", "edit")
ANSWERS = ("caption", "age", "attributes", "change")  # placeholders a text answer is parsed into
KEYS = {"task", "requires", "prompts", "target", "parse", "unconditional", "attributes"}
ATTRIBUTE_KEYS = {"item", "separator", "yes", "no", "names"}


@dataclass
class Sample:
    """One rendered example: text with `<face>` placeholders plus the faces' codes.

    Attributes:
        task: the task name.
        prompt: the prompt text; each `<face>` stands for the next entry of prompt_faces.
        target: the answer text ("" from render_raw); each `<face>` for the next target face.
        prompt_faces: code arrays (h*w,) for the prompt's `<face>`s, in order.
        target_faces: code arrays for the target's `<face>`s.
        label: what the answer means (an int age, an attribute dict, a caption, face codes).
    """

    task: str
    prompt: str
    target: str
    prompt_faces: list[np.ndarray] = field(default_factory=list)
    target_faces: list[np.ndarray] = field(default_factory=list)
    label: Any = None


@dataclass
class Parsed:
    """A parsed answer. `ok` False means unparseable, and `reason` says why (value is None)."""

    ok: bool
    value: Any = None
    reason: str = ""
    text: str = ""


def _fields(template: str, where: str) -> list[tuple[str, str | None]]:
    """Split a template into (literal, placeholder-or-None) pieces; `{{`/`}}` are literal braces."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise UserError(f"{where}: malformed template {template!r}: {err}") from None
    pieces = []
    for literal, name, spec, conversion in parsed:
        if name is not None and name not in PLACEHOLDERS:
            raise UserError(f"{where}: unknown placeholder {{{name}}} in {template!r}; known: {sorted(PLACEHOLDERS)}")
        if spec or conversion:
            raise UserError(f"{where}: placeholder {{{name}}} may not have a format spec or conversion")
        pieces.append((literal, name))
    return pieces


def _names(pieces: list[tuple[str, str | None]]) -> list[str]:
    return [name for _, name in pieces if name is not None]


@dataclass
class AttributeVerbalizer:
    """Attributes <-> "smiling yes, eyeglasses no, ..." in the fixed order of ATTRIBUTES.

    A fixed-order list rather than one question per attribute: one teacher-forced pass reads every
    attribute (P(yes) vs P(no) at each answer slot, each slot a single token), the sequence is
    shorter than N separate questions each repeating the face, and the model learns the attributes
    jointly (Bald and Black_Hair exclude each other). Only the attributes the record has are
    listed, so a source that labels only Male (UTKFace) trains a one-item answer.
    """

    item: str = "{name} {value}"
    separator: str = ", "
    yes: str = "yes"
    no: str = "no"
    names: dict[str, str] = field(default_factory=dict)  # CelebA name -> words; default: lowercased, _ -> space

    def __post_init__(self) -> None:
        self.words = {a: self.names.get(a, a.replace("_", " ").lower()) for a in ATTRIBUTES}
        self.by_words = {w: a for a, w in self.words.items()}
        item = re.escape(self.item).replace(re.escape("{name}"), "(?P<name>.+?)")
        item = item.replace(re.escape("{value}"), f"(?P<value>{re.escape(self.yes)}|{re.escape(self.no)})")
        self.item_re = re.compile(rf"^\s*{item}\s*$", re.IGNORECASE)

    def check(self, where: str) -> None:
        unknown = sorted(set(self.names) - set(ATTRIBUTES))
        if unknown:
            raise UserError(f"{where}: attributes.names has unknown attribute(s) {unknown}")
        if len(self.by_words) != len(self.words):
            raise UserError(f"{where}: attributes.names gives two attributes the same words")
        if "{name}" not in self.item or "{value}" not in self.item:
            raise UserError(f"{where}: attributes.item must contain {{name}} and {{value}}, got {self.item!r}")
        if self.yes.lower() == self.no.lower() or not self.yes.strip() or not self.no.strip():
            raise UserError(f"{where}: attributes.yes and attributes.no must be two different words")
        for a, w in self.words.items():
            if self.separator.strip() and self.separator.strip() in w:
                raise UserError(f"{where}: the words for {a} ({w!r}) contain the separator {self.separator!r}")

    def render(self, attributes: Mapping[str, bool]) -> str:
        return self.separator.join(
            self.item.replace("{name}", self.words[a]).replace("{value}", self.yes if attributes[a] else self.no)
            for a in ATTRIBUTES if a in attributes
        )

    def render_change(self, attribute: str, value: bool | int) -> str:
        """One edit's change: "eyeglasses yes" for an attribute, "age 45" for an age edit."""
        if attribute == "age":
            return f"age {int(value)}"
        return self.render({attribute: bool(value)})

    def parse_change(self, text: str) -> Parsed:
        """"eyeglasses yes" -> ("Eyeglasses", True); "age 45" -> ("age", 45)."""
        age = re.fullmatch(r"\s*age (\d+)\s*", text, re.IGNORECASE)
        if age:
            return Parsed(True, ("age", int(age[1])), text=text)
        items = self.parse(text)
        if not items.ok:
            return items
        if len(items.value) != 1:
            return Parsed(False, reason=f"a change names one attribute, this names {len(items.value)}", text=text)
        return Parsed(True, next(iter(items.value.items())), text=text)

    def parse(self, text: str) -> Parsed:
        out: dict[str, bool] = {}
        sep = self.separator.strip() or self.separator
        for part in text.split(sep):
            m = self.item_re.match(part)
            if not m:
                return Parsed(False, reason=f"item {part.strip()!r} is not '{self.item}'", text=text)
            name = self.by_words.get(m["name"].strip().lower())
            if name is None:
                return Parsed(False, reason=f"unknown attribute {m['name'].strip()!r}", text=text)
            if name in out:
                return Parsed(False, reason=f"attribute {m['name'].strip()!r} appears twice", text=text)
            out[name] = m["value"].lower() == self.yes.lower()
        return Parsed(True, out, text=text)


@dataclass
class Template:
    """One task's file, checked. Use through `Templates`."""

    task: str
    path: Path
    requires: list[str]
    prompts: list[list[tuple[str, str | None]]]
    target: list[tuple[str, str | None]]
    parse_re: re.Pattern[str] | None  # None for a task whose answer is a face
    unconditional: list[tuple[str, str | None]] | None
    attributes: AttributeVerbalizer
    prompt_texts: list[str]  # the raw strings, for the tokenizer's training corpus
    target_text: str
    unconditional_text: str | None

    @property
    def answers_with_face(self) -> bool:
        return "face" in _names(self.target)


def _load_one(path: Path) -> Template:
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{where}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}: the top level must be a mapping with keys {sorted(KEYS)}")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}; known: {sorted(KEYS)}")
    for key in ("task", "prompts", "target"):
        if key not in data:
            raise UserError(f"{where}: missing key {key!r}")
    task = data["task"]
    if not isinstance(task, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", task):
        raise UserError(f"{where}: task must be a lowercase name like 'age', got {task!r}")
    prompts = data["prompts"]
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise UserError(f"{where}: prompts must be a non-empty list of strings")
    if not isinstance(data["target"], str):
        raise UserError(f"{where}: target must be a string")
    requires = data.get("requires", [])
    if not isinstance(requires, list) or not set(requires) <= set(LABELS):
        raise UserError(f"{where}: requires must be a list of labels from {list(LABELS)}, got {requires!r}")

    parsed_prompts = [_fields(p, f"{where}: prompts[{i}]") for i, p in enumerate(prompts)]
    target = _fields(data["target"], f"{where}: target")
    unconditional = data.get("unconditional")
    parsed_uncond = None
    if unconditional is not None:
        parsed_uncond = _fields(str(unconditional), f"{where}: unconditional")
        extra = sorted(set(_names(parsed_uncond)) - {"face"})
        if extra:
            raise UserError(f"{where}: unconditional may only use {{face}} (the condition is what it drops), has {extra}")

    used = [(f"prompts[{i}]", n) for i, p in enumerate(parsed_prompts) for n in _names(p)]
    used += [("target", n) for n in _names(target)]
    for place, name in used:
        need = PLACEHOLDERS[name]
        if need is not None and need not in requires:
            raise UserError(f"{where}: {place} uses placeholder {{{name}}}, which needs '{need}' in requires: {requires}")
    if "face" in _names(target) and _names(target) != ["face"]:
        raise UserError(f"{where}: a target with {{face}} must be exactly '{{face}}' (a face answer has no text)")
    if "face" not in _names(target):
        answer_fields = _names(target)
        if len(answer_fields) != 1 or answer_fields[0] not in ANSWERS:
            raise UserError(f"{where}: target must hold exactly one of {{face}}, {', '.join('{' + a + '}' for a in ANSWERS)}")

    attr_cfg = data.get("attributes") or {}
    if not isinstance(attr_cfg, dict) or not set(attr_cfg) <= ATTRIBUTE_KEYS:
        raise UserError(f"{where}: attributes must be a mapping with keys from {sorted(ATTRIBUTE_KEYS)}")
    verbalizer = AttributeVerbalizer(**{k: (str(v) if k != "names" else dict(v or {})) for k, v in attr_cfg.items()})
    verbalizer.check(f"{where}: attributes")

    parse_re = None
    if "face" not in _names(target):
        pattern = data.get("parse")
        if pattern is None:  # derive from the target: literals must match, the answer is non-greedy
            parts = []
            for i, (lit, n) in enumerate(target):
                lit = lit.lstrip() if i == 0 else lit
                lit = lit.rstrip() if i == len(target) - 1 and n is None else lit  # parse() strips the text
                parts.append(re.escape(lit) + (f"(?P<{n}>.+?)" if n else ""))
            pattern = "^" + "".join(parts) + "$"
        try:
            parse_re = re.compile(str(pattern), re.IGNORECASE | re.DOTALL)
        except re.error as err:
            raise UserError(f"{where}: parse is not a valid regular expression: {err}") from None
        groups = set(parse_re.groupindex)
        if not groups or not groups <= set(ANSWERS):
            raise UserError(f"{where}: parse must have named group(s) from {list(ANSWERS)}, has {sorted(groups)}")
    return Template(
        task=task, path=path, requires=list(requires), prompts=parsed_prompts, target=target,
        parse_re=parse_re, unconditional=parsed_uncond, attributes=verbalizer,
        prompt_texts=list(prompts), target_text=data["target"],
        unconditional_text=None if unconditional is None else str(unconditional),
    )


class Templates:
    """All task templates of one folder. Load with `Templates.load(dir)`."""

    def __init__(self, templates: dict[str, Template], directory: Path | None = None) -> None:
        self.templates = templates
        self.directory = directory

    @classmethod
    def load(cls, directory: str | Path) -> Templates:
        """Read and check every `*.yaml` file in `directory` (one task per file)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise UserError(f"templates folder not found: {directory}")
        templates: dict[str, Template] = {}
        for path in sorted(directory.glob("*.yaml")):
            t = _load_one(path)
            if t.task in templates:
                raise UserError(f"{path}: task {t.task!r} is already defined by {templates[t.task].path}")
            templates[t.task] = t
        if not templates:
            raise UserError(f"{directory}: no *.yaml template files")
        return cls(templates, directory)

    @property
    def tasks(self) -> list[str]:
        return list(self.templates)

    def get(self, task: str) -> Template:
        """The template of `task`; UserError naming the known tasks if there is none."""
        if task not in self.templates:
            raise UserError(f"unknown task {task!r}; known: {self.tasks}")
        return self.templates[task]

    def supports(self, task: str, record: FaceRecord) -> bool:
        """Whether `record` has every label `task` requires."""
        return all(record.has(label) for label in self.get(task).requires)

    def verbalizer(self, t: Template) -> AttributeVerbalizer:
        """How `t`'s answer words attributes: its own `attributes:` block, except for a `{change}`
        answer, which uses the attribute list's words when a template defines that task (naming a
        change and reading an attribute then share tokens)."""
        if "change" in _names(t.target) and "attributes" in self.templates:
            return self.templates["attributes"].attributes
        return t.attributes

    # ---- rendering ------------------------------------------------------------------------------

    def render(
        self, task: str, record: FaceRecord, rng: np.random.Generator, *,
        prompt_index: int | None = None, unconditional: bool = False,
    ) -> Sample:
        """Render one example of `task` from `record`: a random paraphrase, caption, instruction.

        Args:
            task: a task name.
            record: a FaceRecord whose `image` (and `edit.source`) are code arrays.
            rng: draws the paraphrase and which caption / instruction is used.
            prompt_index: use this paraphrase instead of a random one.
            unconditional: use the task's `unconditional` prompt (condition dropped, for CFG).
        Returns:
            a Sample; `label` is the structured answer the target verbalizes.
        """
        t = self.get(task)
        missing = [label for label in t.requires if not record.has(label)]
        if missing:
            raise UserError(f"record {record.id!r} has no {missing} for task {task!r} ({t.path})")
        if unconditional:
            if t.unconditional is None:
                raise UserError(f"{t.path}: task {task!r} has no 'unconditional' prompt")
            prompt = t.unconditional
        else:
            index = int(rng.integers(len(t.prompts))) if prompt_index is None else prompt_index
            prompt = t.prompts[index]
        values = self._values(t, record, rng)
        prompt_face = record.edit.source if "edit" in t.requires else record.image
        prompt_text, prompt_faces = _fill(prompt, values, prompt_face, str(t.path))
        target_text, target_faces = _fill(t.target, values, record.image, str(t.path))
        answer = _names(t.target)[0]
        label = record.image if answer == "face" else values["_label_" + answer]
        return Sample(task, prompt_text, target_text, prompt_faces, target_faces, label)

    def _values(self, t: Template, record: FaceRecord, rng: np.random.Generator) -> dict[str, Any]:
        """Placeholder -> text for this record; each random choice is drawn once, in a fixed order."""
        values: dict[str, Any] = {}
        if record.has("captions"):
            caption = record.captions[int(rng.integers(len(record.captions)))]
            values.update(text=caption, caption=caption, _label_caption=caption)
        if record.has("edit"):
            instructions = record.edit.instructions
            values["instruction"] = instructions[int(rng.integers(len(instructions)))]
            values.update(change=self.verbalizer(t).render_change(record.edit.attribute, record.edit.value),
                          _label_change=(record.edit.attribute, record.edit.value))
        if record.age is not None:
            values.update(age=str(int(record.age)), _label_age=int(record.age))
        if record.has("attributes"):
            values.update(attributes=t.attributes.render(record.attributes), _label_attributes=dict(record.attributes))
        return values

    def render_raw(self, template: str, **fields: Any) -> Sample:
        """A user's own prompt string -> Sample (target empty): how tasks are prompted by template strings.

        Args:
            template: any text with placeholders, e.g. "to caption: {face}" or "to image: {text}".
            **fields: a value per placeholder; `face` is a code array, or a list of code arrays
                used in order by successive `{face}`s.
        Returns:
            a Sample with task "raw", the rendered prompt and its faces.
        """
        pieces = _fields(template, "prompt template")
        missing = sorted({n for n in _names(pieces) if n not in fields})
        if missing:
            raise UserError(f"prompt template {template!r} needs a value for {', '.join('{' + m + '}' for m in missing)}")
        faces = fields.get("face")
        n_faces = _names(pieces).count("face")
        if isinstance(faces, (list, tuple)):
            if len(faces) != n_faces:
                raise UserError(f"prompt template {template!r} has {n_faces} {{face}} but {len(faces)} faces were given")
            face_iter = iter(faces)
        else:
            face_iter = iter([faces] * n_faces)
        text, prompt_faces = [], []
        for literal, name in pieces:
            text.append(literal)
            if name == "face":
                text.append(FACE_TOKEN)
                prompt_faces.append(np.asarray(next(face_iter)).reshape(-1))
            elif name is not None:
                text.append(str(fields[name]))
        return Sample("raw", "".join(text), "", prompt_faces, [], None)

    # ---- parsing --------------------------------------------------------------------------------

    def parse(self, task: str, text: str) -> Parsed:
        """Read a decoded answer back into a value: int age, attribute dict, caption str, or an
        edit's change (attribute, value).

        Text that is not a valid answer gives `Parsed(ok=False, reason=...)`, never a default.
        """
        t = self.get(task)
        if t.parse_re is None:
            raise UserError(f"task {task!r} answers with a face; decode its codes with the VQGAN instead of parsing text")
        m = t.parse_re.match(text.strip())
        if not m:
            return Parsed(False, reason=f"does not match {t.parse_re.pattern!r}", text=text)
        found = [(n, v) for n, v in m.groupdict().items() if v is not None]
        if not found:
            return Parsed(False, reason="no answer group matched", text=text)
        name, raw = found[0][0], found[0][1].strip()
        if name == "age":
            if not raw.isdigit():
                return Parsed(False, reason=f"age {raw!r} is not a whole number", text=text)
            return Parsed(True, int(raw), text=text)
        if name == "attributes":
            return self.verbalizer(t).parse(raw)
        if name == "change":
            return self.verbalizer(t).parse_change(raw)
        if not raw:
            return Parsed(False, reason="empty caption", text=text)
        return Parsed(True, raw, text=text)

    # ---- for the text tokenizer -----------------------------------------------------------------

    def corpus(self) -> list[str]:
        """Every fixed string of every template (prompts, targets, attribute words), for training the text tokenizer."""
        out = []
        for t in self.templates.values():
            strings = [*t.prompt_texts, t.target_text] + ([t.unconditional_text] if t.unconditional_text else [])
            for s in strings:
                out.append("".join(lit for lit, _ in _fields(s, str(t.path))))
            if {"attributes", "change"} & set(_names(t.target)):
                words = self.verbalizer(t)
                out.append(words.render({a: bool(i % 2) for i, a in enumerate(ATTRIBUTES)}))
                out.append(words.render({a: not (i % 2) for i, a in enumerate(ATTRIBUTES)}))
        return [s for s in out if s.strip()]

    def answer_words(self) -> list[str]:
        """Words that must each be one token: the yes/no of every attribute list."""
        words = []
        for t in self.templates.values():
            if {"attributes", "change"} & set(_names(t.target)):
                words += [self.verbalizer(t).yes, self.verbalizer(t).no]
        return sorted(set(words))


def _fill(pieces: list[tuple[str, str | None]], values: dict[str, Any], face: Any, where: str) -> tuple[str, list[np.ndarray]]:
    """Pieces + values -> text with `<face>` placeholders, and the faces' codes in order."""
    text, faces = [], []
    for literal, name in pieces:
        text.append(literal)
        if name == "face":
            if face is None or isinstance(face, str):
                raise UserError(f"{where}: {{face}} needs VQ codes, got {type(face).__name__} (pre-tokenize the data first)")
            text.append(FACE_TOKEN)
            faces.append(np.asarray(face).reshape(-1))
        elif name is not None:
            if name not in values:
                raise UserError(f"{where}: the record has no value for placeholder {{{name}}}")
            text.append(values[name])
    return "".join(text), faces
