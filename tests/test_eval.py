"""`talk2face eval` end to end on the tiny world: every task reported, files written, bad input named."""

import json

from talk2face.cli import main
from talk2face.evaluation.benchmark import claims_of, control_accuracy, stated_age

import torch


def test_eval_writes_every_task(tiny_model, tiny_world, tiny_evaluator, tmp_path):
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model), "--data", str(tiny_world["synface"]),
            "--evaluator", str(tiny_evaluator), "--out", str(out), "--fast"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    for task in ("age", "attributes", "caption", "text_to_face", "edit"):
        assert "metrics" in report[task], (task, report[task])
    assert {"model", "mean age (baseline)"} <= set(report["age"]["metrics"])
    assert "BLEU-4" in report["caption"]["metrics"]["model"]
    t2f = report["text_to_face"]["metrics"]
    assert {"model (in-distribution prompts)", "model (held-out free-style prompts)",
            "VQ reconstruction of real faces (ceiling)"} <= set(t2f)
    assert 0 <= report["edit"]["metrics"]["model"]["success"] <= 1
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


def test_claims_and_stated_ages():
    assert claims_of(["Smiling", "!Eyeglasses"]) == {"Smiling": True, "Eyeglasses": False}
    assert stated_age("a 34-year-old man") == 34 and stated_age("a lady aged 61") == 61 and stated_age("a man") is None
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.1]])  # two samples of one prompt
    assert control_accuracy([{"Smiling": True, "Eyeglasses": False}], probs, ["Smiling", "Eyeglasses"], 2) == 0.75
