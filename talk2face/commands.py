"""The prompting commands of the `talk2face` CLI: generate, caption, age, attributes, edit, prompt.

All take `--model DIR` (default: the shipped SynFace model, models/synface) and `--json` for machine-readable
output; a user mistake (missing model, unreadable image, unknown placeholder) prints one line.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talk2face import shipped
from talk2face.errors import UserError
from talk2face.templates import Parsed



@dataclass(frozen=True)
class Command:
    """A subcommand: its arguments and what it does."""

    add_task_arguments: Callable[[argparse.ArgumentParser], None]
    run_task: Callable[[Any, argparse.Namespace], Any]  # (Talk2Face, args) -> JSON-able result
    # (args) -> the input images, for a command that writes a picture to --out: the output is
    # checked against them before any work (a text answer from `prompt` writes nothing)
    picture_inputs: Callable[[argparse.Namespace], list[str]] | None = None
    answer_may_be_text: bool = False  # then an existing --out is refused only once a picture is due

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", default=str(shipped.MODEL), help="a trained model folder; the default is the shipped SynFace model")
        parser.add_argument("--device", default="cpu", help="cpu or cuda")
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")
        self.add_task_arguments(parser)
        if self.picture_inputs is not None:
            parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    def run(self, args: argparse.Namespace) -> int:
        from transformers.utils import logging as hf_logging

        from talk2face.facade import Talk2Face  # heavy imports only once a command runs

        hf_logging.disable_progress_bar()  # the CLI prints answers, not weight-loading bars
        if self.picture_inputs is not None:  # before any work: a bad --out never costs a generation
            check_output(args.out, self.picture_inputs(args), args.overwrite or self.answer_may_be_text)
        result = self.run_task(Talk2Face.from_pretrained(args.model, device=args.device), args)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            for item in result if isinstance(result, list) else [result]:
                print(item if isinstance(item, str) else "  ".join(f"{k}: {v}" for k, v in item.items()))
        return 0


def _images(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="face images (any size; centre-cropped and resized as in training)")


def check_output(out: str, inputs: list[str], overwrite: bool) -> None:
    """Refuse an --out that PIL cannot write, that is one of the inputs, or that exists (unless overwrite)."""
    from PIL import Image

    if not out:
        raise UserError("--out is required: where to write the picture")
    suffix = Path(out).suffix.lower()
    writable = sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE)
    if suffix not in writable:
        raise UserError(f"--out {out}: cannot write a picture with extension {suffix or '(none)'!r}; "
                        f"use .png or .jpg (any of {', '.join(writable)})")
    if any(Path(out).resolve() == Path(i).resolve() for i in inputs):
        raise UserError(f"--out {out} is an input image: write the result elsewhere")
    if Path(out).exists() and not overwrite:
        raise UserError(f"--out {out} exists: pass --overwrite to replace it")


def _save_grid(images: list, out: str, columns: int) -> str:
    """Save one image as is, or several as a grid (--out checked by check_output); returns the path."""
    from PIL import Image

    size = images[0].size
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    grid = Image.new("RGB", (columns * size[0], rows * size[1]), "white")
    for i, im in enumerate(images):
        grid.paste(im, ((i % columns) * size[0], (i // columns) * size[1]))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    return out


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help='a description, e.g. "a smiling old man with glasses"')
    parser.add_argument("-n", "--num-samples", type=int, default=8)
    parser.add_argument("--out", default="grid.png", help="PNG to write (a grid when -n > 1)")
    parser.add_argument("--cfg-scale", type=float, default=3.0, help="classifier-free guidance (1 = off)")
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--rerank", type=int, default=1, help="candidates per kept face, ranked by caption likelihood")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--literal", action="store_true",
                        help="read the words as given (no WordNet rewriting of words the model never saw)")


def _generate(model, args: argparse.Namespace) -> dict[str, Any]:
    if args.num_samples < 1:
        raise UserError("-n must be at least 1")
    if args.literal:
        model.rewrite_unknown_words = False
    images = model.text_to_face(
        args.text, num_samples=args.num_samples, cfg_scale=args.cfg_scale, top_k=args.top_k, top_p=args.top_p,
        temperature=args.temperature, seed=args.seed, rerank=args.rerank,
    )
    return {"out": _save_grid(images, args.out, columns=8), "faces": len(images), "read_as": model.free_text(args.text)}


def _caption(model, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"image": p, "caption": c} for p, c in zip(args.images, model.caption(args.images))]


def _age(model, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"image": p, "age": round(a, 1)} for p, a in zip(args.images, model.estimate_age(args.images))]


def _attributes_arguments(parser: argparse.ArgumentParser) -> None:
    _images(parser)
    parser.add_argument("--names", nargs="*", help="CelebA attribute names to report (default: all the model knows)")


def _attributes(model, args: argparse.Namespace) -> list[dict[str, Any]]:
    out = model.classify_attributes(args.images, names=args.names)
    return [{"image": p, **{k: round(v, 3) for k, v in probs.items()}} for p, probs in zip(args.images, out)]


def _edit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="the face to edit")
    parser.add_argument("instructions", nargs="+", help='one or more instructions, applied in turn ("make him smile"); '
                        'with --in-place, Attribute=yes|no ("Eyeglasses=yes")')
    parser.add_argument("--in-place", action="store_true",
                        help="regenerate only the attribute's region (models trained without edit pairs)")
    parser.add_argument("--candidates", type=int, default=8, help="--in-place: samples per edit, best kept")
    parser.add_argument("--out", default="edited.png", help="PNG of the final result")
    parser.add_argument("--cfg-scale", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)


def _attribute_change(text: str) -> tuple[str, bool]:
    """"Eyeglasses=yes" -> ("Eyeglasses", True)."""
    name, _, value = text.partition("=")
    if value.lower() not in ("yes", "no"):
        raise UserError(f"--in-place edits are Attribute=yes or Attribute=no, got {text!r}")
    return name, value.lower() == "yes"


def _edit(model, args: argparse.Namespace) -> dict[str, Any]:
    face: Any = args.image
    for instruction in args.instructions:  # chained edits: each result is the next source
        if args.in_place:
            attribute, value = _attribute_change(instruction)
            face = model.edit_in_place([face], attribute, value, candidates=args.candidates,
                                       cfg_scale=args.cfg_scale, seed=args.seed)[0]
        else:
            face = model.edit([face], instruction, cfg_scale=args.cfg_scale, seed=args.seed)[0]
    return {"out": _save_grid([face], args.out, columns=1), "instructions": args.instructions}


def _prompt_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("template", help='a template string, e.g. "to caption: {face}" or "to image: {text}"')
    parser.add_argument("--face", action="append", default=[], help="image for {face} (repeat for several)")
    parser.add_argument("--text", help="text for {text}")
    parser.add_argument("--instruction", help="text for {instruction}")
    parser.add_argument("--out", default="answer.png", help="where a face answer is written")
    parser.add_argument("--read-as", help="a task (age, attributes, caption) whose template reads the text answer back into a value")


def _prompt(model, args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {k: v for k, v in (("text", args.text), ("instruction", args.instruction)) if v is not None}
    if args.face:
        fields["face"] = args.face if len(args.face) > 1 else args.face[0]
    answer = model.prompt(args.template, read_as=args.read_as, **fields)
    if isinstance(answer, str):
        return {"answer": answer}
    if isinstance(answer, Parsed):
        return {"answer": answer.text, "value": answer.value, "ok": answer.ok, **({"reason": answer.reason} if not answer.ok else {})}
    check_output(args.out, args.face, args.overwrite)
    return {"out": _save_grid([answer], args.out, columns=1)}


generate = Command(_generate_arguments, _generate, picture_inputs=lambda args: [])
caption = Command(_images, _caption)
age = Command(_images, _age)
attributes = Command(_attributes_arguments, _attributes)
edit = Command(_edit_arguments, _edit, picture_inputs=lambda args: [args.image])
prompt = Command(_prompt_arguments, _prompt, picture_inputs=lambda args: args.face, answer_may_be_text=True)
