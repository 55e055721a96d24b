"""Learning curves: each task's `make eval` metric against training tokens, for one or more runs.

    python scripts/learning_curves.py runs/demo/decoder "today=runs/old/decoder" --out docs/learning_curves.png

Each run is a training output folder trained with `evaluable_every`; every model folder in its
`evaluable/` (and its `final`) is evaluated by `make eval`'s own code on the first `--limit` test
faces, judged by the shipped evaluator. The figures are cached next to each folder
(`curve_eval.json`), so rerunning only evaluates what is new. Writes the picture and a JSON table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from talk2face import shipped  # noqa: E402
from talk2face.evaluation.benchmark import Benchmark, EvalConfig  # noqa: E402

# (task, report row, metric, axis label, baseline row or None)
CURVES = [
    ("attributes", "model", "balanced accuracy", "attributes: balanced accuracy", "majority (baseline)"),
    ("age", "model", "MAE", "age: MAE (years)", "mean age (baseline)"),
    ("caption", "model", "attribute precision", "caption: attribute precision", "nearest neighbour (baseline)"),
    ("caption", "model", "BLEU-4", "caption: BLEU-4", "nearest neighbour (baseline)"),
    ("text_to_face", "model (in-distribution prompts)", "attribute control", "text-to-face: attribute control",
     "random real faces (chance)"),
]


def evaluate_folder(folder: Path, args: argparse.Namespace) -> dict:
    cache = folder / "curve_eval.json"
    key = {"limit": args.limit, "data": args.data, "evaluator": args.evaluator}
    if cache.exists() and json.loads(cache.read_text()).get("key") == key:
        return json.loads(cache.read_text())
    tasks = sorted({c[0] for c in CURVES})
    report = Benchmark(EvalConfig(model=str(folder), data=args.data, evaluator=args.evaluator, out=str(folder / "curve_eval"),
                                  limit=args.limit, tasks=tasks, samples_per_prompt=1, seed=0)).run()
    card = json.loads((folder / "talk2face.json").read_text())
    result = {"key": key, "step": card.get("step"), "trained_tokens": card.get("trained_tokens"),
              "metrics": {t: report[t].get("metrics", {}) for t in tasks}}
    cache.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="training output folders, optionally as label=folder")
    parser.add_argument("--data", default="data/synface")
    parser.add_argument("--evaluator", default=str(shipped.EVALUATOR))
    parser.add_argument("--limit", type=int, default=100, help="test faces per task and point")
    parser.add_argument("--out", default="docs/learning_curves.png")
    args = parser.parse_args(argv)

    curves: dict[str, list[dict]] = {}
    for spec in args.runs:
        label, _, path = spec.rpartition("=")
        run = Path(path)
        folders = sorted((run / "evaluable").glob("step_*[0-9]"))
        final_step = json.loads((run / "final" / "talk2face.json").read_text()).get("step") if (run / "final" / "talk2face.json").exists() else None
        if final_step is None or f"step_{final_step:08d}" not in {f.name for f in folders}:
            folders.append(run / "final")  # unless an evaluable folder already holds the last step
        curves[label or run.name] = [evaluate_folder(f, args) for f in folders if (f / "talk2face.json").exists()]

    fig, axes = plt.subplots(1, len(CURVES), figsize=(4 * len(CURVES), 3.4))
    for ax, (task, row, metric, title, baseline) in zip(axes, CURVES):
        for label, points in curves.items():
            points = sorted((p for p in points if p["trained_tokens"]), key=lambda p: p["trained_tokens"])
            xs = [p["trained_tokens"] / 1e6 for p in points]
            ys = [p["metrics"][task].get(row, {}).get(metric, float("nan")) for p in points]
            ax.plot(xs, ys, marker="o", label=label)
            if baseline and points and baseline in points[-1]["metrics"][task]:
                ax.axhline(points[-1]["metrics"][task][baseline][metric], color="gray", linestyle=":", linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training tokens (M)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"make eval metrics ({args.limit} test faces per point; dotted: baseline / chance)", fontsize=10)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    Path(args.out).with_suffix(".json").write_text(json.dumps(curves, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
