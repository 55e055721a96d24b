"""How a planned edit should draw its change: each route on the test edits' TRUE changes.

    python scripts/edit_routes.py --model models/synface --data data/synface \
        "edit=edit:8:1" "text-to-face=t2f:8:1" "pooled=edit+t2f:8:3"

A route is PROMPTS:CANDIDATES:KEEP_WEIGHT[:CFG]: the prompts whose draws are pooled (`edit`: the
edit task with the face and the instruction; `t2f`: text-to-face asked for the change alone, the
route of `edit_in_place`), draws per prompt, and the weight of keeping the other attributes when
the best draw is chosen (Talk2Face._redraw_region). Every route redraws only the changed
attribute's region and is judged like `make eval`'s edit task, on the test edits of attributes the
model reads (age edits have no region). With the true change given, this measures the drawing
alone: what `Talk2Face.edit` reaches when its plan is right (README, edits).
"""

from __future__ import annotations

import argparse

import numpy as np

from talk2face.data.images import load_images
from talk2face.edit_regions import EDIT_REGIONS, target_phrase
from talk2face.evaluation.benchmark import Benchmark, EvalConfig, region_box
from talk2face.evaluation.face_metrics import edit_scores
from talk2face.sampling import Sampling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/synface")
    parser.add_argument("--data", default="data/synface")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("routes", nargs="+", help="NAME=PROMPTS:CANDIDATES:KEEP_WEIGHT[:CFG], e.g. pooled=edit+t2f:8:3")
    args = parser.parse_args()
    bench = Benchmark(EvalConfig(model=args.model, data=args.data, limit=0))
    model = bench.model
    records = [r for r in bench.edits if r.edit is not None and r.edit.attribute in model.attributes]
    rng = np.random.default_rng(args.seed)  # the instruction make eval draws for each edit
    instructions = [r.edit.instructions[int(rng.integers(len(r.edit.instructions)))] for r in records]
    sources = [bench.source.root / r.edit.source for r in records]
    faces = np.stack(model.encode_faces(sources))  # (N, h*w)
    changes = [(r.edit.attribute, bool(r.edit.value)) for r in records]
    pixels = load_images(sources, bench.size)
    source_probs, _, names = bench.judge(pixels)
    regions = [region_box(EDIT_REGIONS.get(a), bench.size) for a, _ in changes]
    prompts = {
        "edit": ([model.task_prompt_ids("edit", face=f, instruction=model.free_text(i)) for f, i in zip(faces, instructions)],
                 [model.task_prompt_ids("edit", unconditional=True, face=f) for f in faces]),
        "t2f": ([model.task_prompt_ids("text_to_face", text=target_phrase(a, v)) for a, v in changes],
                [model.task_prompt_ids("text_to_face", unconditional=True)] * len(faces)),
    }
    print(f"{len(records)} test edits of attributes {args.model} reads")
    for route in args.routes:
        name, _, spec = route.partition("=")
        kinds, candidates, keep, *cfg = spec.split(":")
        codes = model._redraw_region(faces, changes, [prompts[k] for k in kinds.split("+")], int(candidates),
                                     float(keep), Sampling(float(cfg[0]) if cfg else 3.0, seed=args.seed), 32)
        edited = load_images(model.decode_faces(codes), bench.size)
        probs, ages, _ = bench.judge(edited)
        scores = edit_scores(names, changes, source_probs.numpy() >= 0.5, probs.numpy() >= 0.5, ages, pixels,
                             edited, regions)
        print(f"{name} ({spec}): " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
