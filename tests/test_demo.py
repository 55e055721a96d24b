"""`make demo` end to end at a toy scale: every stage runs, the page is written, a rerun reuses it all."""

import json

import pytest

from conftest import REPO
from benchmarks.demo import main


@pytest.mark.slow
def test_demo_runs_every_stage_then_reuses_them(tmp_path, capsys):
    config = tmp_path / "demo.yaml"
    config.write_text(json.dumps({
        "faces": 60, "size": 32, "data": str(tmp_path / "synface"), "runs": str(tmp_path / "runs"),
        "vqgan": "train", "evaluator": "train",  # the shipped ones are 64x64; this test trains its own
        "judge_faces": 40, "judge_data": str(tmp_path / "judge"),
        "out": str(tmp_path / "demo"),
        "vqgan_overrides": ["--model={image_size: 32, ch_mult: [1, 2], n_codes: 64}", "--optim.steps=3",
                            "--optim.batch_size=8", "--eval_every=3", "--save_every=3"],
        "decoder_config": str(REPO / "experiments" / "synface-tiny.yaml"),
        "decoder_overrides": ["--optim.max_steps=4", "--data.val_per_task=2"],
        "evaluator_overrides": ["--model.image_size=32", "--model.channels=[8, 16]", "--train.epochs=1",
                                "--train.batch_size=32", "--train.warmup_steps=1"],
        "eval_limit": 4, "samples_per_prompt": 2,
    }))
    page = main([str(config)])
    html = page.read_text()
    assert "Text to face" in html and "Benchmark" in html and "Time per stage" in html
    report = json.loads((tmp_path / "demo" / "eval" / "report.json").read_text())
    assert {"age", "attributes", "caption", "text_to_face", "edit"} <= set(report)
    for name in ("t2f_0.png", "face_0.png", "edit_0.png", "synface_sheet.png", "overview.png"):
        assert (tmp_path / "demo" / name).exists(), name
    command = f"talk2face serve --model {tmp_path / 'runs' / 'decoder' / 'final'}"  # the way to the web page
    assert command in html and command in capsys.readouterr().out
    main([str(config)])  # the second run reuses every stage
    assert capsys.readouterr().out.count("reusing") == 8
    assert json.loads((tmp_path / "runs" / "evaluator" / "train_config.json").read_text())["data"]["source"] == str(tmp_path / "judge")


@pytest.mark.slow
def test_demo_uses_the_shipped_tokenizer_and_evaluator_by_default(tmp_path, capsys):
    from talk2face import shipped
    from talk2face.evaluation.evaluator import FaceEvaluator
    from talk2face.vqgan import VQGAN

    config = tmp_path / "demo.yaml"
    config.write_text(json.dumps({
        "faces": 80, "size": 64, "data": str(tmp_path / "synface"), "runs": str(tmp_path / "runs"),
        "out": str(tmp_path / "demo"), "decoder_config": str(REPO / "experiments" / "synface-tiny.yaml"),
        "decoder_overrides": ["--optim.max_steps=2", "--data.val_per_task=2"], "eval_limit": 4, "samples_per_prompt": 2,
    }))
    main([str(config)])
    out = capsys.readouterr().out
    assert "image tokenizer: shipped" in out and "evaluator: shipped" in out and "[5/5]" in out
    assert not (tmp_path / "runs" / "vqgan").exists() and not (tmp_path / "runs" / "evaluator").exists()
    tokenized = json.loads((tmp_path / "runs" / "tokenized" / "tokenize.json").read_text())
    assert tokenized["vqgan_fingerprint"] == VQGAN.fingerprint(shipped.VQGAN)
    report = json.loads((tmp_path / "demo" / "eval" / "report.json").read_text())
    assert report["meta"]["evaluator_weights"] == FaceEvaluator.fingerprint(shipped.EVALUATOR)
