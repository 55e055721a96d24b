"""`make eval` / `talk2face eval`: every task of a trained model on the test split of a data set.

    talk2face eval --model runs/synface-small/final --data data/synface \
        --evaluator evaluators/synface --out outputs/eval [--tasks age,caption] [--fast]

Writes report.json, report.md and pictures (see report.py). Each task runs on its own: a task the
model was not trained for, or that the data cannot test, is reported as not run while the others
still run. Generated and edited faces are judged by the evaluator network (trained on real images
only, see train_evaluator.py); every figure sits next to a reference point: baselines for the
analysis tasks, VQ reconstructions of the real test faces (the tokenizer's ceiling) for synthesis.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from talk2face.checkpoint import read_card
from talk2face.data.images import load_images
from talk2face.data.record import TASKS, FaceRecord
from talk2face.data.sources import Source, open_source
from talk2face.device import check_device, cpu_model
from talk2face.edit_regions import EDIT_REGIONS
from talk2face.errors import UserError
from talk2face.evaluation.baselines import MajorityAttributes, MeanAge, NearestNeighbourCaption
from talk2face.evaluation.caption_attributes import attribute_precision_recall, caption_mentions, stated_ages
from talk2face.evaluation.caption_metrics import caption_scores
from talk2face.evaluation.evaluator import FaceEvaluator
from talk2face import shipped
from talk2face.evaluation.face_metrics import (
    age_mae, balanced_accuracy, cumulative_score, diversity, edit_scores, frechet_distance, labels_matrix,
    mean_accuracy, per_attribute_accuracy,
)
from talk2face.evaluation.inception import InceptionFeatures
from talk2face.evaluation.report import write_report
from talk2face.sampling import check_sampling
from talk2face.vqgan.metrics import psnr

@dataclass
class EvalConfig:
    model: str = str(shipped.MODEL)  # a trained model folder (default: the shipped SynFace model)
    data: str = "data/synface"  # a data source with a test split
    evaluator: str = str(shipped.EVALUATOR)  # judges generated / edited faces ("" = skip those tasks)
    out: str = "outputs/eval"
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    limit: int = 500  # test faces per task (0 = all)
    samples_per_prompt: int = 2  # text-to-face faces per prompt (diversity needs >= 2)
    cfg_scale: float = 3.0  # guidance for text-to-face and edit
    rerank: int = 1  # text-to-face: keep the best of N samples by the model's own caption likelihood
    edit_candidates: int = 8  # draws per prompt of a planned or in-place edit, the best kept (Talk2Face.edit's default)
    edit_keep_weight: float = 3.0  # how much keeping the other attributes counts in that choice (Talk2Face.edit's default)
    top_k: int = 0
    seed: int = 0
    batch_size: int = 32
    fast: bool = False  # tests: 8 faces per task, 2 samples per prompt
    inception: str = ""  # a local FID Inception file (see evaluation/inception.py): adds standard FID
    device: str = "cuda" if torch.cuda.is_available() else "cpu"  # where the model and evaluator run


def stated_age(text: str) -> int | None:
    """The age a description states in digits ("a 34-year-old", "aged 34"), else None."""
    ages = stated_ages(text)
    return ages[0] if ages else None


def claims_of(mentions: Sequence[str]) -> dict[str, bool]:
    """["Smiling", "!Eyeglasses"] -> {"Smiling": True, "Eyeglasses": False}."""
    return {m.lstrip("!"): not m.startswith("!") for m in mentions}


def named_features(claims: Sequence[dict[str, bool]]) -> list[dict[str, bool]]:
    """Only the claims that a face HAS a feature ("with glasses"), without the sex and age that
    every description's noun states: the hard part of attribute control, the same kind of claim
    in every prompt grammar."""
    return [{a: v for a, v in c.items() if v and a not in ("Male", "Young")} for c in claims]


def control_accuracy(claims: Sequence[dict[str, bool]], probs: torch.Tensor, names: Sequence[str], per_prompt: int) -> float:
    """Share of (generated face, claimed attribute) pairs where the evaluator sees what was claimed."""
    index = {n: j for j, n in enumerate(names)}
    hits = []
    for i, said in enumerate(claims):
        for face in probs[i * per_prompt : (i + 1) * per_prompt]:
            hits += [bool(face[index[a]] >= 0.5) == v for a, v in said.items() if a in index]
    return float(np.mean(hits)) if hits else float("nan")


class Benchmark:
    """Holds the model, data and evaluator; one method per task, each returning a report entry."""

    def __init__(self, cfg: EvalConfig) -> None:
        from talk2face.facade import Talk2Face  # the library's inference API is what is measured

        self.cfg = cfg
        self.model = Talk2Face.from_pretrained(cfg.model, device=cfg.device)
        self.card = read_card(Path(cfg.model))
        self.source: Source = open_source(cfg.data)
        test = list(self.source.records("test"))
        if not test:
            raise UserError(f"data source {cfg.data} has no test split")
        limit = 8 if cfg.fast else (cfg.limit or len(test))
        self.faces = [r for r in test if r.edit is None][:limit]
        self.edits = [r for r in test if r.edit is not None][:limit]
        self.train = [r for r in self.source.records("train") if r.edit is None][: 20 * limit]
        self.evaluator = FaceEvaluator.from_pretrained(cfg.evaluator).to(cfg.device) if cfg.evaluator else None
        self.inception = InceptionFeatures(cfg.inception, cfg.device) if cfg.inception else None
        self.size = self.model.vqgan.image_size
        self.pictures: dict[str, Any] = {}

    def pixels(self, records: Sequence[FaceRecord]) -> torch.Tensor:
        return load_images([self.source.image_path(r) for r in records], self.size).to(self.cfg.device)  # (N, 3, H, W)

    def paths(self, records: Sequence[FaceRecord]) -> list[Path]:
        return [self.source.image_path(r) for r in records]

    def judge(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """Evaluator verdicts: (attribute probabilities (N, A), ages (N,), attribute names)."""
        if self.evaluator is None:
            raise UserError("no evaluator given (--evaluator): generated faces cannot be judged")
        probs, ages = self.evaluator.predict(images)  # resizes to its own training size
        return probs, ages, list(self.evaluator.config.attributes)

    # ---- analysis tasks ----------------------------------------------------------------------------

    def age(self) -> dict[str, Any]:
        records = [r for r in self.faces if r.age is not None]
        if not records:
            raise UserError("the test split has no ages")
        true = [r.age for r in records]
        predicted = self.model.estimate_age(self.paths(records), batch_size=self.cfg.batch_size)
        baseline = MeanAge().fit([r.age for r in self.train if r.age is not None]).predict(len(true))
        return {
            "metrics": {
                "model": {"MAE": age_mae(predicted, true), "CS@5": cumulative_score(predicted, true), "n": len(true)},
                "mean age (baseline)": {"MAE": age_mae(baseline, true), "CS@5": cumulative_score(baseline, true)},
            },
            "age_pairs": {"true": true, "predicted": predicted},
        }

    def attributes(self) -> dict[str, Any]:
        records = [r for r in self.faces if r.attributes]
        names = [a for a in self.model.attributes if any(a in r.attributes for r in records)]
        if not records or not names:
            raise UserError("the test split has no attributes this model knows")
        truth = labels_matrix([r.attributes for r in records], names)  # (N, A)
        probs = self.model.classify_attributes(self.paths(records), names=names, batch_size=self.cfg.batch_size)
        predicted = np.array([[p[a] >= 0.5 for a in names] for p in probs])
        majority = MajorityAttributes(names).fit(labels_matrix([r.attributes for r in self.train if r.attributes], names))
        base = majority.predict(len(records))
        return {
            "metrics": {
                "model": {"mean accuracy": mean_accuracy(predicted, truth, names),
                          "balanced accuracy": balanced_accuracy(predicted, truth, names), "n": len(records)},
                "majority (baseline)": {"mean accuracy": mean_accuracy(base, truth, names),
                                        "balanced accuracy": balanced_accuracy(base, truth, names)},
            },
            "per_attribute": {"model": per_attribute_accuracy(predicted, truth, names),
                              "majority": per_attribute_accuracy(base, truth, names)},
        }

    def caption(self) -> dict[str, Any]:
        records = [r for r in self.faces if r.captions]
        if not records:
            raise UserError("the test split has no captions")
        refs = [r.captions for r in records]
        captions = self.model.caption(self.paths(records), batch_size=self.cfg.batch_size)
        truth = [r.attributes or {} for r in records]
        rows = {"model": {**caption_scores(refs, captions),
                          **_prefixed(attribute_precision_recall([caption_mentions(c, True) for c in captions], truth))}}
        if self.evaluator is not None:  # nearest-neighbour caption from the training set
            train = [r for r in self.train if r.captions]
            nn_caption = NearestNeighbourCaption().fit(
                self.evaluator.features(self.pixels(train)), [r.captions for r in train])
            guesses = nn_caption.predict(self.evaluator.features(self.pixels(records)))
            rows["nearest neighbour (baseline)"] = {
                **caption_scores(refs, guesses),
                **_prefixed(attribute_precision_recall([caption_mentions(c, True) for c in guesses], truth))}
        examples = [{"image": str(p), "caption": c, "reference": r[0]} for p, c, r in zip(self.paths(records)[:8], captions, refs)]
        return {"metrics": rows, "examples": examples}

    # ---- synthesis tasks ---------------------------------------------------------------------------

    def _generate(self, prompts: list[str]) -> torch.Tensor:
        """Faces for the prompts, samples of one prompt together: (P * samples, 3, H, W)."""
        per = 2 if self.cfg.fast else self.cfg.samples_per_prompt
        images = []
        for start in tqdm(range(0, len(prompts), self.cfg.batch_size), desc="text_to_face", leave=False):
            chunk = prompts[start : start + self.cfg.batch_size]
            pil = self.model.text_to_face(chunk, num_samples=per, cfg_scale=self.cfg.cfg_scale, top_k=self.cfg.top_k,
                                          seed=self.cfg.seed + start, rerank=self.cfg.rerank, batch_size=self.cfg.batch_size)
            images.append(load_images(pil, self.size))
        return torch.cat(images)

    def text_to_face(self) -> dict[str, Any]:
        records = [r for r in self.faces if r.captions]
        if not records:
            raise UserError("the test split has no captions to prompt with")
        rng = np.random.default_rng(self.cfg.seed)
        per = 2 if self.cfg.fast else self.cfg.samples_per_prompt
        picks = [int(rng.integers(len(r.captions))) for r in records]
        prompts = [r.captions[i] for r, i in zip(records, picks)]
        claims = [claims_of(r.caption_attributes[i]) if r.caption_attributes else
                  claims_of(caption_mentions(r.captions[i], True)) for r, i in zip(records, picks)]
        real = self.pixels(records)
        generated = self._generate(prompts)
        probs, ages, names = self.judge(generated)
        real_features = self.evaluator.features(real)
        gen_features = self.evaluator.features(generated)
        recon = self.model.vqgan.reconstruct(real)
        recon_probs, _, _ = self.judge(recon)
        truth = labels_matrix([r.attributes or {} for r in records], names)
        per_prompt_div = [diversity(gen_features[i * per : (i + 1) * per], generated[i * per : (i + 1) * per])
                          for i in range(len(prompts))]
        age_errors = [abs(float(a) - s) for i, p in enumerate(prompts) if (s := stated_age(p)) is not None
                      for a in ages[i * per : (i + 1) * per]]
        model_row = {
            "attribute control": control_accuracy(claims, probs, names, per),
            "control, named features": control_accuracy(named_features(claims), probs, names, per),
            "age error (stated ages)": float(np.mean(age_errors)) if age_errors else float("nan"),
            "Fréchet (evaluator features)": frechet_distance(gen_features, real_features),
            "diversity (feature L2)": float(np.mean([d["feature_l2"] for d in per_prompt_div])),
            "diversity (pixel L1)": float(np.mean([d["pixel_l1"] for d in per_prompt_div])),
            "n prompts": len(prompts),
        }
        ceiling = {
            "attribute control": control_accuracy(claims, recon_probs, names, 1),
            "control, named features": control_accuracy(named_features(claims), recon_probs, names, 1),
            "attribute accuracy vs labels": mean_accuracy(recon_probs.numpy() >= 0.5, truth, names),
            "Fréchet (evaluator features)": frechet_distance(self.evaluator.features(recon), real_features),
            "PSNR (dB)": float(psnr(recon, real).mean()),  # the tokenizer's own measure (on saved pixels)
        }
        if self.inception is not None:
            real_inception = self.inception(real)
            model_row["FID (Inception)"] = frechet_distance(self.inception(generated), real_inception)
            ceiling["FID (Inception)"] = frechet_distance(self.inception(recon), real_inception)
        rows = {"model (in-distribution prompts)": model_row}
        heldout_rows, heldout_ceiling = self._heldout_control(records, rng, recon_probs)
        rows.update(heldout_rows)
        ceiling.update(heldout_ceiling)
        rows["VQ reconstruction of real faces (ceiling)"] = ceiling
        # the chance level every control figure must beat: each prompt judged on another person's real face
        real_probs, _, _ = self.judge(real)
        others = torch.from_numpy(np.random.default_rng(self.cfg.seed + 1).permutation(len(records)))
        rows["random real faces (chance)"] = {
            "attribute control": control_accuracy(claims, real_probs[others], names, 1),
            "control, named features": control_accuracy(named_features(claims), real_probs[others], names, 1),
        }
        self.pictures["text_to_face"] = generated[: 8 * per]
        self.pictures["text_to_face_prompts"] = prompts[:8]
        return {"metrics": rows}

    def _heldout_control(
        self, records: list[FaceRecord], rng: np.random.Generator, recon_probs: torch.Tensor,
    ) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        """Attribute control on SynFace's held-out free-style grammar (wording never seen in training),
        as the model answers it (unknown words rewritten through WordNet, talk2face.lexicon) and,
        for comparison, with the words passed through unchanged.

        Returns:
            (model rows, the held-out claims' ceiling: the VQ reconstructions of the real faces
            judged on them); both empty for other data sets.
        """
        if any(r.source != "synface" or not r.attributes for r in records):
            return {}, {}
        from talk2face.data.synface.freestyle import heldout_prompt_claims

        pairs = [heldout_prompt_claims(r, rng, n=1)[0] for r in records]
        claims = [claims_of(c) for _, c in pairs]
        per = 2 if self.cfg.fast else self.cfg.samples_per_prompt
        names = list(self.evaluator.config.attributes)
        ceiling = {"attribute control, held-out claims": control_accuracy(claims, recon_probs, names, 1),
                   "control, named features, held-out claims": control_accuracy(named_features(claims), recon_probs, names, 1)}
        rewrites = self.model.rewrite_unknown_words
        variants = {"": rewrites} | ({", unknown words kept": False} if rewrites else {})
        rows = {}
        try:
            for label, rewrite in variants.items():
                self.model.rewrite_unknown_words = rewrite
                probs, _, _ = self.judge(self._generate([p for p, _ in pairs]))
                rows[f"model (held-out free-style prompts{label})"] = {
                    "attribute control": control_accuracy(claims, probs, names, per),
                    "control, named features": control_accuracy(named_features(claims), probs, names, per),
                    "n prompts": len(pairs)}
        finally:
            self.model.rewrite_unknown_words = rewrites
        return rows, ceiling

    def edit(self) -> dict[str, Any]:
        records = [r for r in self.edits if r.edit is not None]
        if not records:
            raise UserError("the test split has no edit pairs")
        rng = np.random.default_rng(self.cfg.seed)
        instructions = [r.edit.instructions[int(rng.integers(len(r.edit.instructions)))] for r in records]
        sources = [self.source.root / r.edit.source for r in records]
        source_pixels = load_images(sources, self.size)
        src_probs, _, names = self.judge(source_pixels)
        requested = [(r.edit.attribute, r.edit.value) for r in records]
        regions = [region_box(EDIT_REGIONS.get(r.edit.attribute), self.size) for r in records]
        rows = {}
        # the default route (planned where the model has edit_plan), then the whole-face decode beside it
        routes = {"model": True} | ({"model, whole face (no plan)": False} if "edit_plan" in self.model.tasks else {})
        for label, plan in routes.items():
            edited = load_images(self.model.edit(sources, instructions, cfg_scale=self.cfg.cfg_scale, seed=self.cfg.seed,
                                                 batch_size=self.cfg.batch_size, candidates=self.cfg.edit_candidates,
                                                 keep_weight=self.cfg.edit_keep_weight, plan=plan), self.size)
            dst_probs, dst_ages, _ = self.judge(edited)
            rows[label] = {**edit_scores(names, requested, src_probs.numpy() >= 0.5, dst_probs.numpy() >= 0.5,
                                         dst_ages, source_pixels, edited, regions), "n": len(records)}
            if plan:
                self.pictures["edit"] = torch.stack([x for pair in zip(source_pixels[:8], edited[:8]) for x in pair])
        # the same metrics on the data set's own target faces: what a perfect editor would score
        targets = self.pixels(records)
        tgt_probs, tgt_ages, _ = self.judge(targets)
        reference = edit_scores(names, requested, src_probs.numpy() >= 0.5, tgt_probs.numpy() >= 0.5, tgt_ages,
                                source_pixels, targets, regions)
        groups: dict[tuple[str, Any], list[int]] = {}  # one batched call per requested change
        for i, change in enumerate(requested):
            if change[0] in self.model.attributes:
                groups.setdefault(change, []).append(i)
        if groups:  # the same edits as real data allows them: no edit pairs, the region regenerated
            order = [i for idx in groups.values() for i in idx]
            in_place = torch.cat([load_images(self.model.edit_in_place(
                [sources[i] for i in idx], attribute, bool(value), candidates=self.cfg.edit_candidates,
                keep_weight=self.cfg.edit_keep_weight,
                cfg_scale=self.cfg.cfg_scale, seed=self.cfg.seed, batch_size=self.cfg.batch_size), self.size)
                for (attribute, value), idx in groups.items()])
            probs, ages, _ = self.judge(in_place)
            rows["model, in place (no edit pairs)"] = {**edit_scores(
                names, [requested[i] for i in order], src_probs.numpy()[order] >= 0.5, probs.numpy() >= 0.5, ages,
                source_pixels[order], in_place, [regions[i] for i in order]), "n": len(order)}
        rows["true edited faces (reference)"] = reference
        # what the decoder can reach at best: it writes codes, so its faces are VQ reconstructions
        recon = self.model.vqgan.reconstruct(targets)
        rec_probs, rec_ages, _ = self.judge(recon)
        rows["true edited faces through the VQGAN (ceiling)"] = edit_scores(
            names, requested, src_probs.numpy() >= 0.5, rec_probs.numpy() >= 0.5, rec_ages, source_pixels, recon, regions)
        return {"metrics": rows,
                "examples": [{"instruction": i, "attribute": a, "value": v} for i, (a, v) in zip(instructions[:8], requested)]}

    def edit_plan(self) -> dict[str, Any]:
        """How often the model names the change an instruction asks for: every phrasing of every test
        edit, and one held-out free-style wording per edit (talk2face/data/synface/freestyle.py)."""
        records = [r for r in self.edits if r.edit is not None]
        if not records:
            raise UserError("the test split has no edit pairs")
        asked = [(i, (r.edit.attribute, r.edit.value)) for r in records for i in r.edit.instructions]
        named = self.model.plan_edits([self.model.free_text(i) for i, _ in asked], self.cfg.batch_size)
        train = Counter((r.edit.attribute, r.edit.value) for r in self.source.records("train") if r.edit is not None)
        majority = train.most_common(1)[0][0] if train else None
        rows = {"model": _plan_scores(named, [c for _, c in asked]),
                "most frequent change in training (baseline)": _plan_scores([majority] * len(asked), [c for _, c in asked])}
        from talk2face.data.synface.freestyle import heldout_instruction

        rng = np.random.default_rng(self.cfg.seed)  # one held-out wording per edit that has one
        heldout = [(i, (r.edit.attribute, r.edit.value)) for r in records
                   if (i := heldout_instruction(r.edit.attribute, r.edit.value, rng)) is not None]
        if heldout:
            said = self.model.plan_edits([self.model.free_text(i) for i, _ in heldout], self.cfg.batch_size)
            rows["model (held-out free-style instructions)"] = _plan_scores(said, [c for _, c in heldout])
        wrong = [{"instruction": i, "asked": f"{a} {v}", "named": str(n)} for (i, (a, v)), n in zip(asked, named)
                 if not _same_change(n, (a, v))]
        return {"metrics": rows, "examples": wrong[:8]}

    def run(self) -> dict[str, Any]:
        results: dict[str, Any] = {"meta": {"model": self.cfg.model, "data": self.cfg.data,
                                            "evaluator": self.cfg.evaluator or "none",
                                            "evaluator_weights": FaceEvaluator.fingerprint(self.cfg.evaluator) if self.cfg.evaluator else "none",
                                            "settings": f"limit {self.cfg.limit}, seed {self.cfg.seed}, cfg_scale "
                                                        f"{self.cfg.cfg_scale}, samples_per_prompt {self.cfg.samples_per_prompt}, "
                                                        f"rerank {self.cfg.rerank}, edit candidates {self.cfg.edit_candidates}, "
                                                        f"edit keep weight {self.cfg.edit_keep_weight}",
                                            "cpu": cpu_model(),
                                            "date": time.strftime("%Y-%m-%d %H:%M")}}
        trained = set(self.card.get("tasks", TASKS))
        for task in tqdm(self.cfg.tasks, desc="eval"):
            start = time.perf_counter()
            if task not in trained:
                results[task] = {"error": f"the model was not trained for {task!r}"}
                continue
            try:
                results[task] = getattr(self, task)()
            except UserError as err:
                results[task] = {"error": str(err)}
            results[task]["seconds"] = round(time.perf_counter() - start, 1)
            tqdm.write(f"{task}: {_summary(results[task])}")
        pictures = {k: v for k, v in self.pictures.items() if isinstance(v, torch.Tensor)}
        write_report(results, self.cfg.out, images=pictures)
        return results


def _same_change(named: tuple[str, Any] | None, asked: tuple[str, Any], age_tolerance: float = 5.0) -> bool:
    """A named change matches the asked one: the same attribute and value, an age within the tolerance."""
    if named is None or named[0] != asked[0]:
        return False
    return abs(named[1] - asked[1]) <= age_tolerance if asked[0] == "age" else bool(named[1]) == bool(asked[1])


def _plan_scores(named: Sequence[tuple[str, Any] | None], asked: Sequence[tuple[str, Any]]) -> dict[str, float]:
    return {"attribute named": float(np.mean([n is not None and n[0] == a[0] for n, a in zip(named, asked)])),
            "change named": float(np.mean([_same_change(n, a) for n, a in zip(named, asked)])),
            "unreadable answers": float(np.mean([n is None for n in named])), "n": len(asked)}


def _prefixed(pr: dict[str, float]) -> dict[str, float]:
    return {"attribute precision": pr["precision"], "attribute recall": pr["recall"]}


def region_box(box: tuple[float, float, float, float] | None, size: int) -> tuple[int, int, int, int] | None:
    """An edit region given as fractions of the side (talk2face.edit_regions) in pixels of a `size` image."""
    return None if box is None else tuple(int(round(f * size)) for f in box)


def _summary(entry: dict[str, Any]) -> str:
    if "error" in entry:
        return f"not run ({entry['error']})"
    first = next(iter(entry["metrics"].values()))
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in first.items())


def check_config(cfg: EvalConfig) -> None:
    """Refuse, before the model loads, the values the run would fail on after minutes of work."""
    if cfg.limit < 0:
        raise UserError(f"--limit {cfg.limit}: must be >= 0 (0 = every test face)")
    if cfg.samples_per_prompt < 2:
        raise UserError(f"--samples-per-prompt {cfg.samples_per_prompt}: must be at least 2 "
                        "(diversity compares the samples of one prompt)")
    check_sampling(cfg.cfg_scale, 1.0, cfg.top_k, 1.0)
    if cfg.rerank < 1:
        raise UserError(f"--rerank {cfg.rerank}: must be at least 1 (1 = keep every sample)")
    if cfg.edit_candidates < 1:
        raise UserError(f"--edit-candidates {cfg.edit_candidates}: must be at least 1")
    if not cfg.edit_keep_weight >= 0:
        raise UserError(f"--edit-keep-weight {cfg.edit_keep_weight}: must be a number >= 0")
    if Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise UserError(f"--out {cfg.out} is a file: the report is a folder (report.json, report.md, pictures)")
    check_device(cfg.device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = EvalConfig()
    parser.add_argument("--model", default=defaults.model, help="a trained model folder; the default is the shipped SynFace one")
    parser.add_argument("--data", default=defaults.data,
                        help="a data source with a test split, e.g. the folder `talk2face synth` writes (relative to the current folder)")
    parser.add_argument("--evaluator", default=defaults.evaluator,
                        help='the evaluator that judges generated and edited faces ("" = skip those tasks); the default is the shipped one')
    parser.add_argument("--out", default=defaults.out, help="the report folder (relative to the current folder)")
    parser.add_argument("--tasks", default="all", help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument("--limit", type=int, default=defaults.limit, help="test faces per task (0 = all)")
    parser.add_argument("--samples-per-prompt", type=int, default=defaults.samples_per_prompt,
                        help="text-to-face faces per prompt (diversity needs >= 2)")
    parser.add_argument("--cfg-scale", type=float, default=defaults.cfg_scale, help="guidance for text-to-face and edit")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the faces drawn and of the test faces picked")
    parser.add_argument("--rerank", type=int, default=defaults.rerank,
                        help="text-to-face: sample N faces per kept one, keep the best by the model's caption likelihood")
    parser.add_argument("--edit-candidates", type=int, default=defaults.edit_candidates,
                        help="draws per prompt of a planned or in-place edit, the best kept by the model's own reading")
    parser.add_argument("--edit-keep-weight", type=float, default=defaults.edit_keep_weight,
                        help="how much keeping the other attributes counts against showing the change in that choice")
    parser.add_argument("--fast", action="store_true", help="a few faces per task (tests)")
    parser.add_argument("--inception", default="", help="local FID Inception file (inception-2015-12-05.pt): adds FID")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (the report.md path and report.json's content) instead of text")


def run(args: argparse.Namespace) -> int:
    tasks = list(TASKS) if args.tasks == "all" else [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise UserError(f"unknown task(s) {unknown}; choose from {','.join(TASKS)}")
    cfg = EvalConfig(model=args.model, data=args.data, evaluator=args.evaluator, out=args.out, tasks=tasks,
                     limit=args.limit, samples_per_prompt=args.samples_per_prompt, cfg_scale=args.cfg_scale,
                     seed=args.seed, rerank=args.rerank, edit_candidates=args.edit_candidates,
                     edit_keep_weight=args.edit_keep_weight, fast=args.fast, inception=args.inception)
    check_config(cfg)
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        Benchmark(cfg).run()  # its per-task lines go to stderr then: stdout holds the JSON alone
    report = Path(cfg.out) / "report.md"
    if args.json:
        print(json.dumps({"report": str(report), "results": json.loads(report.with_suffix(".json").read_text())}))
    else:
        print(f"wrote {report}")
    return 0
