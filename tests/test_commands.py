"""The prompting CLI: JSON answers, pictures written, one-line errors for user mistakes."""

import json
import os

import pytest
from PIL import Image

from talk2face.cli import main
from talk2face.facade import Talk2Face


@pytest.fixture(scope="module")
def face(tiny_world):
    return str(sorted((tiny_world["synface"] / "test").glob("*.png"))[0])


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_generate_writes_a_grid(tiny_model, tmp_path, capsys):
    out = run_json(capsys, "generate", "a smiling old man with glasses", "-n", "3", "--out", str(tmp_path / "g.png"),
                   "--model", str(tiny_model))
    assert out["faces"] == 3 and Image.open(tmp_path / "g.png").size == (3 * 32, 32)


def test_generate_says_how_it_read_unknown_words(tiny_model, tmp_path, capsys):
    args = ["generate", "a lady with specs", "-n", "1", "--model", str(tiny_model)]
    assert run_json(capsys, *args, "--out", str(tmp_path / "a.png"))["read_as"] == "a woman with spectacles"
    assert run_json(capsys, *args, "--out", str(tmp_path / "b.png"), "--literal")["read_as"] == "a lady with specs"


@pytest.fixture(scope="module")
def api(tiny_model):
    return Talk2Face.from_pretrained(tiny_model, bf16=False)


def test_analysis_commands_answer_what_the_api_answers(tiny_model, face, api, capsys):
    captions = run_json(capsys, "caption", face, face, "--model", str(tiny_model))
    assert [c["image"] for c in captions] == [face, face] and captions[1]["caption"] == api.caption([face])[0]
    assert run_json(capsys, "age", face, "--model", str(tiny_model))[0]["age"] == pytest.approx(api.estimate_age([face])[0], abs=0.05)  # printed to 0.1 year
    probs = run_json(capsys, "attributes", face, "--names", "Smiling", "Male", "--model", str(tiny_model))[0]
    expected = api.classify_attributes([face], names=["Smiling", "Male"])[0]
    assert set(probs) == {"image", "Smiling", "Male"} and probs["Male"] == pytest.approx(expected["Male"], abs=5e-4)  # printed to 3 places


def test_edit_chains_instructions(tiny_model, face, tmp_path, capsys):
    out = run_json(capsys, "edit", face, "make her smile", "add glasses", "--out", str(tmp_path / "e.png"),
                   "--model", str(tiny_model))
    assert out["instructions"] == ["make her smile", "add glasses"] and (tmp_path / "e.png").exists()


def test_in_place_edit_from_the_shell(tiny_model, face, tmp_path, capsys):
    out = run_json(capsys, "edit", face, "Eyeglasses=yes", "Smiling=no", "--in-place", "--candidates", "2",
                   "--out", str(tmp_path / "e.png"), "--model", str(tiny_model))
    assert Image.open(out["out"]).size == (32, 32)
    assert main(["edit", face, "add glasses", "--in-place", "--model", str(tiny_model)]) == 2
    assert "Attribute=yes" in capsys.readouterr().err


def test_prompt_with_a_template_string(tiny_model, face, api, capsys, tmp_path):
    out = run_json(capsys, "prompt", "{face} describe this face:", "--face", face, "--out", str(tmp_path / "a.png"),
                   "--model", str(tiny_model))
    assert out["answer"] == api.caption([face])[0]  # the caption task's own prompt: the caption's answer
    read = run_json(capsys, "prompt", "{face} describe this face:", "--face", face, "--read-as", "age",
                    "--model", str(tiny_model))
    assert read["answer"] == out["answer"] and read["ok"] is False and read["value"] is None and "match" in read["reason"]


@pytest.mark.parametrize("argv, message", [
    (["caption", "missing.png"], "image not found"),
    (["age", "{face}", "--model", "/nonexistent"], "model folder not found"),
    (["prompt", "describe {person}", "--model", "MODEL"], "person"),
])
def test_user_mistakes_exit_2_with_one_line(tiny_model, capsys, argv, message):
    argv = [str(tiny_model) if a == "MODEL" else a for a in argv]
    if "--model" not in argv:
        argv += ["--model", str(tiny_model)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("case", ["unknown extension", "existing file", "the input itself"])
def test_out_is_checked_before_any_work_and_never_overwritten(tiny_model, face, tmp_path, capsys, case):
    existing = tmp_path / "old.png"
    existing.write_bytes(b"a user's picture")
    out, expected = {"unknown extension": (tmp_path / "g.xyz", "cannot write a picture with extension '.xyz'"),
                     "existing file": (existing, "exists: pass --overwrite"),
                     "the input itself": (face, "is an input image")}[case]
    before = open(face, "rb").read()
    argv = ["edit", face, "make them smile", "--out", str(out), "--model", str(tiny_model)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert existing.read_bytes() == b"a user's picture" and open(face, "rb").read() == before


def test_overwrite_replaces_an_existing_picture(tiny_model, tmp_path, capsys):
    out = tmp_path / "g.png"
    out.write_bytes(b"old")
    run_json(capsys, "generate", "a man", "-n", "1", "--out", str(out), "--model", str(tiny_model), "--overwrite")
    assert Image.open(out).size == (32, 32)


def test_version_and_verbosity_flags(tiny_world, capsys):
    import importlib.metadata
    import logging

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"talk2face {importlib.metadata.version('talk2face')}"
    root = logging.getLogger()
    before = root.level, list(root.handlers)
    try:
        for flag, level in (("-v", logging.INFO), ("-q", logging.ERROR)):
            root.handlers.clear()
            assert main([flag, "data", "inspect", str(tiny_world["synface"])]) == 0
            assert root.level == level
        assert "train" in capsys.readouterr().out  # the command itself still prints its result
        with pytest.raises(SystemExit):
            main(["-q", "-v", "data", "inspect", str(tiny_world["synface"])])  # one or the other
        capsys.readouterr()
        assert main(["-q", "data", "inspect", str(tiny_world["synface"] / "missing")]) == 2
        assert "talk2face data: error:" in capsys.readouterr().err  # quiet still names what went wrong
    finally:
        root.setLevel(before[0])
        root.handlers[:] = before[1]


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_shows_no_progress_bar(tmp_path, quiet):
    import subprocess
    import sys

    argv = [sys.executable, "-m", "talk2face.cli", *(["-q"] if quiet else []), "synth", "--n", "4", "--size", "32",
            "--out", str(tmp_path / "faces"), "--workers", "1"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, env={**os.environ, "TQDM_DISABLE": ""})
    assert ("it/s" in done.stderr or "face/s" in done.stderr) != quiet
    assert "wrote 4 images" in done.stdout
