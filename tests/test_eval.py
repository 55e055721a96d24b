"""`talk2face eval` end to end on the tiny world: every task reported, files written, bad input named."""

import json
import math
import warnings

import pytest
import torch

from talk2face.cli import main
from talk2face.errors import UserError
from talk2face.evaluation.caption_attributes import caption_mentions
from talk2face.evaluation.benchmark import claims_of, control_accuracy, named_features, stated_age
from talk2face.evaluation.inception import InceptionFeatures


class StandInInception(torch.nn.Module):
    """The FID network's calling convention (pixels in [0, 255], return_features) with toy features."""

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return torch.cat([img.mean(dim=(2, 3)), img.std(dim=(2, 3))], dim=1) / 255.0  # (N, 6)


@pytest.fixture
def inception_file(tmp_path):
    path = tmp_path / "inception.pt"
    with warnings.catch_warnings():  # torch.jit.script is deprecated; the FID file is TorchScript all the same
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(StandInInception()).save(str(path))
    return path


def test_eval_writes_every_task(tiny_model, tiny_world, tiny_evaluator, inception_file, tmp_path):
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model), "--data", str(tiny_world["synface"]),
            "--evaluator", str(tiny_evaluator), "--out", str(out), "--fast", "--inception", str(inception_file)]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    for task in ("age", "attributes", "caption", "text_to_face", "edit", "edit_plan"):
        assert "metrics" in report[task], (task, report[task])
    assert {"model", "mean age (baseline)"} <= set(report["age"]["metrics"])
    assert "BLEU-4" in report["caption"]["metrics"]["model"]
    t2f = report["text_to_face"]["metrics"]
    assert {"model (in-distribution prompts)", "model (held-out free-style prompts)",
            "model (held-out free-style prompts, unknown words kept)",
            "VQ reconstruction of real faces (ceiling)"} <= set(t2f)
    # drawn faces are not the real ones: a distance of 0 (or the clamp at 0 hiding a negative) is a bug
    assert all(math.isfinite(row["FID (Inception)"]) and row["FID (Inception)"] > 0
               for name, row in t2f.items() if "FID (Inception)" in row)
    assert {"model", "model, whole face (no plan)", "model, in place (no edit pairs)",
            "true edited faces through the VQGAN (ceiling)"} <= set(report["edit"]["metrics"])  # trained on edit_plan
    plan = report["edit_plan"]["metrics"]
    assert plan["model"]["n"] == plan["most frequent change in training (baseline)"]["n"] > 0
    assert 0 < plan["model (held-out free-style instructions)"]["n"] <= plan["model"]["n"]
    md = (out / "report.md").read_text()
    assert "## age" in md and (out / "age_age_scatter.png").exists() and (out / "text_to_face.png").exists()


def test_one_task_and_missing_evaluator_keep_going(tiny_model, tiny_world, tmp_path):
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model), "--data", str(tiny_world["synface"]), "--evaluator", "",
            "--out", str(out), "--fast", "--tasks", "age,text_to_face"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report) == {"meta", "age", "text_to_face"}
    assert "evaluator" in report["text_to_face"]["error"] and "metrics" in report["age"]


def test_text_to_face_is_judged_with_the_reranking_asked_for_and_the_report_says_so(
        tiny_model, tiny_world, tiny_evaluator, tmp_path, monkeypatch):
    from talk2face.facade import Talk2Face

    asked = []
    drawn = Talk2Face.text_to_face
    monkeypatch.setattr(Talk2Face, "text_to_face", lambda self, *a, **kw: asked.append(kw["rerank"]) or drawn(self, *a, **kw))
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model), "--data", str(tiny_world["synface"]), "--evaluator", str(tiny_evaluator),
            "--out", str(out), "--fast", "--tasks", "text_to_face", "--rerank", "2", "--seed", "5"]
    assert main(argv) == 0
    assert asked and set(asked) == {2}
    meta = json.loads((out / "report.json").read_text())["meta"]
    assert "rerank 2" in meta["settings"] and "seed 5" in meta["settings"]


def test_a_named_change_counts_when_attribute_and_value_match_and_an_age_within_5_years():
    from talk2face.evaluation.benchmark import _plan_scores

    asked = [("Smiling", True), ("Smiling", True), ("age", 40), ("age", 40), ("Bald", False)]
    named = [("Smiling", True), ("Smiling", False), ("age", 45), ("age", 46), None]
    scores = _plan_scores(named, asked)
    assert scores["attribute named"] == 0.8 and scores["change named"] == 0.4
    assert scores["unreadable answers"] == 0.2 and scores["n"] == 5


def test_claims_and_stated_ages():
    assert claims_of(["Smiling", "!Eyeglasses"]) == {"Smiling": True, "Eyeglasses": False}
    assert stated_age("a 34-year-old man") == 34 and stated_age("a lady aged 61") == 61 and stated_age("a man") is None
    # the prompts' stated age and the captions' Young claim read ages by one rule
    assert stated_age("a woman 70 years of age") == 70 and stated_age("a man, age 20") == 20
    assert "Young" in caption_mentions("a man, age 20") and "!Young" in caption_mentions("a woman 70 years of age", True)
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.1]])  # two samples of one prompt
    assert control_accuracy([{"Smiling": True, "Eyeglasses": False}], probs, ["Smiling", "Eyeglasses"], 2) == 0.75
    said = claims_of(["!Male", "Young", "Smiling", "!Eyeglasses"])
    assert named_features([said]) == [{"Smiling": True}]  # sex, age and absences are not named features


def test_inception_features_take_pixels_and_bad_files_are_named(inception_file, tmp_path):
    images = torch.rand(5, 3, 16, 16) * 2 - 1
    features = InceptionFeatures(inception_file)(images, batch_size=2)
    pixels = ((images + 1) * 127.5).round()
    assert features.shape == (5, 6) and torch.allclose(features[:, :3], pixels.mean(dim=(2, 3)) / 255, atol=1e-5)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(UserError, match="junk.pt"):
        InceptionFeatures(tmp_path / "junk.pt")
    with pytest.raises(UserError, match="not found"):
        InceptionFeatures(tmp_path / "missing.pt")


def test_edits_are_judged_with_the_draws_and_keep_weight_asked_for(tiny_model, tiny_world, tiny_evaluator, tmp_path,
                                                                     monkeypatch):
    from talk2face.facade import Talk2Face

    asked = []
    edit, in_place = Talk2Face.edit, Talk2Face.edit_in_place
    monkeypatch.setattr(Talk2Face, "edit", lambda self, *a, **kw: asked.append(
        ("edit", kw["candidates"], kw["keep_weight"], kw["plan"])) or edit(self, *a, **kw))
    monkeypatch.setattr(Talk2Face, "edit_in_place", lambda self, *a, **kw: asked.append(
        ("in place", kw["candidates"], kw["keep_weight"], None)) or in_place(self, *a, **kw))
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model), "--data", str(tiny_world["synface"]), "--evaluator", str(tiny_evaluator),
            "--out", str(out), "--fast", "--tasks", "edit", "--edit-candidates", "2", "--edit-keep-weight", "7"]
    assert main(argv) == 0
    assert ("edit", 2, 7.0, True) in asked and ("edit", 2, 7.0, False) in asked  # planned, and whole face beside
    assert {a[1:3] for a in asked} == {(2, 7.0)}
    assert "edit candidates 2, edit keep weight 7.0" in json.loads((out / "report.json").read_text())["meta"]["settings"]
