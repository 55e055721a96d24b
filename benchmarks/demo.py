"""`make demo`: every task end to end on the embedded SynFace data, with numbers and pictures.

    python -m benchmarks.demo [experiments/demo.yaml] [--key=value ...]

Stages: render SynFace -> pre-tokenize with the shipped tokenizer (tokenizers/synface-vqgan) ->
train the decoder on all tasks (`accelerate launch -m talk2face_train.train`) -> `make eval`, judged by
the shipped evaluator (evaluators/synface) -> demo/index.html. `--vqgan=train` / `--evaluator=train`
(`make demo VQGAN=train EVALUATOR=train`) train those two here first instead.
Each stage reports progress and its time; a stage whose result exists is reused, so a second
run only redoes what is missing (delete a stage's folder to redo it).
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from talk2face.config import load_config
from talk2face.errors import UserError
from talk2face import shipped
from talk2face.shipped import SHOWCASE_EDITS, SHOWCASE_PROMPTS

REPO = Path(__file__).resolve().parents[1]


@dataclass
class DemoConfig:
    faces: int = 10000  # SynFace images to render (identities + their edit pairs)
    size: int = 64  # image side
    seed: int = 0
    data: str = "data/synface"  # where SynFace is written (shared by demo runs of one size/seed)
    runs: str = "runs/demo"  # VQGAN, tokenized data, decoder, evaluator
    out: str = "demo"  # index.html, report, pictures
    vqgan: str = "tokenizers/synface-vqgan"  # the image tokenizer folder, or "train" to train one (vqgan_config)
    vqgan_config: str = "experiments/vqgan-synface.yaml"
    vqgan_overrides: list[str] = field(default_factory=list)
    decoder_config: str = "experiments/synface-small.yaml"
    decoder_overrides: list[str] = field(default_factory=list)  # e.g. a shorter --optim.max_steps
    evaluator: str = "evaluators/synface"  # the judge of make eval, or "train" to train one (below)
    # A trained evaluator learns from its own faces: other identities (seed + 1), more of them
    # (the shipped one's card gives its figures).
    judge_faces: int = 40000
    judge_data: str = "data/synface-judge"
    evaluator_config: str = "experiments/evaluator-synface.yaml"
    evaluator_overrides: list[str] = field(default_factory=list)
    eval_limit: int = 200  # test faces per task in the report
    samples_per_prompt: int = 2


class Stages:
    """Runs named stages once, timing each; a stage whose `done` path exists is skipped."""

    def __init__(self, total: int) -> None:
        self.total, self.count, self.seconds = total, 0, {}

    def run(self, name: str, done: Path, fn: Callable[[], object]) -> None:
        self.count += 1
        head = f"[{self.count}/{self.total}] {name}"
        if done.exists():
            print(f"{head}: reusing {done}", flush=True)
            self.seconds[name] = 0.0
            return
        print(f"{head} ...", flush=True)
        start = time.perf_counter()
        fn()
        self.seconds[name] = time.perf_counter() - start
        print(f"{head}: done in {self.seconds[name]:.0f} s", flush=True)


def launch_decoder_training(cfg: DemoConfig, tokenized: Path, vqgan: Path, out: Path) -> None:
    """`accelerate launch -m talk2face_train.train` as a user would run it (resumes if interrupted)."""
    accelerate_cfg = REPO / "experiments" / "accelerate" / ("gpu.yaml" if torch.cuda.is_available() else "cpu.yaml")
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_cfg),
        "-m", "talk2face_train.train", str(REPO / cfg.decoder_config),
        f"--data.sources=[{{tokenized: {tokenized}}}]", f"--data.vqgan={vqgan}",
        f"--data.text_tokenizer={shipped.TEXT_TOKENIZER}", f"--data.templates={shipped.TEMPLATES}",
        f"--output_dir={out}", "--resume=latest", "--log_with=none", *cfg.decoder_overrides,
    ]
    subprocess.run(cmd, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})


def showcase(model_dir: Path, data: Path, out: Path, seed: int) -> dict:
    """Pictures and answers for the page: prompts -> faces, test faces -> answers, edits."""
    from talk2face.data.sources import open_source
    from talk2face.evaluation.report import image_grid
    from talk2face.facade import Talk2Face

    model = Talk2Face.from_pretrained(model_dir)
    faces = model.text_to_face(SHOWCASE_PROMPTS, num_samples=4, seed=seed)
    for i, prompt in enumerate(SHOWCASE_PROMPTS):
        image_grid(faces[4 * i : 4 * i + 4], rows=1).save(out / f"t2f_{i}.png")
    source = open_source(data)
    records = [r for r in source.records("test") if r.edit is None][:8]
    paths = [source.image_path(r) for r in records]
    captions, ages = model.caption(paths), model.estimate_age(paths)
    attributes = model.classify_attributes(paths)
    analysis = []
    for i, (r, p) in enumerate(zip(records, paths)):
        image_grid([model.decode_faces(torch.as_tensor(model.encode_faces([p])[0])[None])[0]], rows=1).save(out / f"face_{i}.png")
        predicted = sorted(a for a, v in attributes[i].items() if v >= 0.5)
        true = sorted(a for a, v in (r.attributes or {}).items() if v)
        analysis.append({"caption": captions[i], "age": ages[i], "true_age": r.age, "attributes": predicted, "true_attributes": true})
    edits = []
    for i, instruction in enumerate(SHOWCASE_EDITS):
        before = paths[i % len(paths)]
        after = model.edit([before], instruction, seed=seed)[0]
        image_grid(model.decode_faces(torch.as_tensor(model.encode_faces([before])[0])[None]) + [after], rows=1).save(out / f"edit_{i}.png")
        edits.append({"instruction": instruction})
    overview(out, [(p, out / f"t2f_{i}.png") for i, p in enumerate(SHOWCASE_PROMPTS)]
             + [(e["instruction"], out / f"edit_{i}.png") for i, e in enumerate(edits)])
    return {"analysis": analysis, "edits": edits}


def overview(out: Path, rows: list[tuple[str, Path]], scale: int = 2, text_width: int = 420) -> None:
    """demo/overview.png, the README's picture: each labelled row of faces, enlarged."""
    from PIL import Image, ImageDraw, ImageFont

    pictures = [(text, Image.open(path)) for text, path in rows]
    width = text_width + max(im.width for _, im in pictures) * scale
    canvas = Image.new("RGB", (width, sum(im.height * scale + 8 for _, im in pictures)), "white")
    draw, font, y = ImageDraw.Draw(canvas), ImageFont.load_default(size=18), 0
    for text, im in pictures:
        canvas.paste(im.resize((im.width * scale, im.height * scale), Image.NEAREST), (text_width, y))
        draw.text((8, y + im.height * scale // 2), text, fill="black", font=font, anchor="lm")
        y += im.height * scale + 8
    canvas.save(out / "overview.png")


def _table(metrics: dict) -> str:
    columns: list[str] = []
    for row in metrics.values():
        columns += [c for c in row if c not in columns]
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))  # noqa: E731
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(f"<tr><th>{html.escape(r)}</th>" + "".join(f"<td>{fmt(v.get(c, ''))}</td>" for c in columns) + "</tr>"
                   for r, v in metrics.items())
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def serve_hint(model: Path) -> tuple[str, str]:
    """(command, address): how to try `model` on the local web page of `talk2face serve`."""
    from talk2face.serve import PORT

    return f"talk2face serve --model {model}", f"http://127.0.0.1:{PORT}/"


def write_page(out: Path, report: dict, shown: dict, seconds: dict, cfg: DemoConfig, model: Path) -> Path:
    """demo/index.html: opens in a browser from disk, no server."""
    e = html.escape
    command, address = serve_hint(model)
    parts = [
        "<!doctype html><meta charset=utf-8><title>talk2face demo</title><style>",
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}img{image-rendering:pixelated}",
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}",
        ".faces{display:flex;flex-wrap:wrap;gap:14px}.face{width:250px;font-size:12px}</style>",
        "<h1>talk2face demo</h1>",
        f"<p>One decoder, every face task, trained on this machine on {cfg.faces} SynFace faces "
        f"({cfg.size}x{cfg.size}). {e(report.get('meta', {}).get('date', ''))}.</p>",
        f"<p>Try it yourself: run <code>{e(command)}</code>, then open <a href='{address}'>{address}</a> "
        "(type a description, drop in a face, edit it).</p>",
        "<h2>Text to face</h2><div class=faces>",
    ]
    for i, prompt in enumerate(SHOWCASE_PROMPTS):
        parts.append(f"<div class=face><img src='t2f_{i}.png' width=240><br>{e(prompt)}</div>")
    parts.append("</div><h2>Captions, ages and attributes of test faces</h2><div class=faces>")
    for i, a in enumerate(shown["analysis"]):
        parts.append(
            f"<div class=face><img src='face_{i}.png' width=96><br><b>caption:</b> {e(a['caption'])}<br>"
            f"<b>age:</b> {a['age']:.1f} (true {a['true_age']})<br><b>attributes:</b> {e(', '.join(a['attributes']))}<br>"
            f"<span style=color:#777>true: {e(', '.join(a['true_attributes']))}</span></div>")
    parts.append("</div><h2>Edits (before, after)</h2><div class=faces>")
    for i, ed in enumerate(shown["edits"]):
        parts.append(f"<div class=face><img src='edit_{i}.png' width=192><br>{e(ed['instruction'])}</div>")
    parts.append("</div><h2>Benchmark (make eval)</h2>")
    for task, body in report.items():
        if task == "meta":
            continue
        parts.append(f"<h3>{e(task)}</h3>")
        parts.append(_table(body["metrics"]) if "metrics" in body else f"<p>not run: {e(body.get('error', ''))}</p>")
    parts.append("<p>Pictures of the report: <a href='eval/report.md'>eval/report.md</a>; "
                 "<img src='eval/age_age_scatter.png' width=300> <img src='eval/attributes_attribute_accuracy.png' width=500></p>")
    parts.append("<h2>SynFace</h2><img src='synface_sheet.png' width=700>")
    parts.append("<h2>Time per stage</h2>" + _table({k: {"seconds": round(v, 1)} for k, v in seconds.items()}))
    page = out / "index.html"
    page.write_text("\n".join(parts))
    return page


def main(argv: list[str] | None = None) -> Path:
    argv = sys.argv[1:] if argv is None else list(argv)
    config = argv[0] if argv and not argv[0].startswith("--") else str(REPO / "experiments" / "demo.yaml")
    cfg = load_config(DemoConfig, config, [a for a in argv if a.startswith("--")])
    data, runs, out = Path(cfg.data), Path(cfg.runs), Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train_vqgan_here, train_evaluator_here = cfg.vqgan == "train", cfg.evaluator == "train"
    vqgan = runs / "vqgan" / "final" if train_vqgan_here else REPO / cfg.vqgan
    evaluator = runs / "evaluator" if train_evaluator_here else REPO / cfg.evaluator
    tokenized, decoder = runs / "tokenized", runs / "decoder" / "final"
    stages = Stages(total=5 + train_vqgan_here + 2 * train_evaluator_here)  # the contact sheet is redrawn every run
    print(f"image tokenizer: {'trained here' if train_vqgan_here else 'shipped'} ({vqgan}); "
          f"evaluator: {'trained here' if train_evaluator_here else 'shipped'} ({evaluator})", flush=True)
    started = time.perf_counter()

    def synth(n: int, seed: int, folder: str | Path) -> None:
        from talk2face.data.synface import generate

        generate(n=n, size=cfg.size, seed=seed, out_dir=folder, overwrite=True)

    def sheet() -> None:
        from talk2face.data.sources import open_source
        from talk2face.data.synface.sheet import contact_sheet

        source = open_source(data)
        contact_sheet(list(source.records("test"))[:64], source.root, out / "synface_sheet.png")

    def train_vqgan() -> None:
        from talk2face_train.vqgan import main as vqgan_main

        vqgan_main([str(REPO / cfg.vqgan_config), f"--data.path={data}", f"--output_dir={runs / 'vqgan'}", *cfg.vqgan_overrides])

    def pretokenize() -> None:
        from talk2face_train.pretokenize import tokenize

        tokenize(vqgan, data, tokenized, batch_size=256, device="cuda" if torch.cuda.is_available() else "cpu")

    def train_evaluator() -> None:
        from talk2face_train.evaluator import main as evaluator_main

        if evaluator_main([str(REPO / cfg.evaluator_config), f"--data.source={cfg.judge_data}", f"--out={evaluator}",
                           *cfg.evaluator_overrides]):
            raise UserError("evaluator training failed (see above)")

    def evaluate() -> None:
        from talk2face.evaluation.benchmark import Benchmark, EvalConfig

        Benchmark(EvalConfig(model=str(decoder), data=str(data), evaluator=str(evaluator), out=str(out / "eval"),
                             limit=cfg.eval_limit, samples_per_prompt=cfg.samples_per_prompt, seed=cfg.seed)).run()

    stages.run("render SynFace", data / "test" / "metadata.jsonl", lambda: synth(cfg.faces, cfg.seed, data))
    sheet()
    if train_vqgan_here:
        stages.run("train the VQGAN", vqgan / "config.json", train_vqgan)
    stages.run("pre-tokenize", tokenized / "tokenize.json", pretokenize)
    stages.run("train the decoder (accelerate launch)", decoder / "talk2face.json",
               lambda: launch_decoder_training(cfg, tokenized, vqgan, runs / "decoder"))
    if train_evaluator_here:
        stages.run("render the evaluator's faces", Path(cfg.judge_data) / "test" / "metadata.jsonl",
                   lambda: synth(cfg.judge_faces, cfg.seed + 1, cfg.judge_data))
        stages.run("train the evaluator", evaluator / "metrics.json", train_evaluator)
    stages.run("evaluate (make eval)", out / "eval" / "report.json", evaluate)
    def page() -> None:
        shown = showcase(decoder, data, out, cfg.seed)
        report = json.loads((out / "eval" / "report.json").read_text())
        write_page(out, report, shown, {**stages.seconds, "total": time.perf_counter() - started}, cfg, decoder)

    stages.run("pictures and page", out / "index.html", page)
    total = time.perf_counter() - started
    (out / "timings.json").write_text(json.dumps({**stages.seconds, "total": total}, indent=2))
    print(f"demo finished in {total / 60:.1f} min: open {out / 'index.html'}")
    command, address = serve_hint(decoder)
    print(f"try the model on a local web page: {command}  (then open {address})")
    return out / "index.html"


if __name__ == "__main__":
    try:
        main()
    except UserError as err:
        sys.exit(f"benchmarks.demo: error: {err}")
