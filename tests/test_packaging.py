"""A non-editable install carries the shipped artifacts: the wheel holds templates, tokenizers,
evaluator and model under talk2face/assets/, and the library run from the unpacked wheel in another
folder answers exactly as the repository's copy does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from talk2face.data.record import TASKS

REPO = Path(__file__).resolve().parents[1]

# Run from the unpacked wheel in a folder that holds no repository: prints where the artifacts were
# found and the shipped model's age answer for one SynFace face.
PROBE = """
import json, sys
from talk2face import shipped
from talk2face.facade import Talk2Face
from talk2face.templates import Templates
model = Talk2Face.from_pretrained()
print(json.dumps({"root": str(shipped.ROOT), "tasks": Templates.load(shipped.TEMPLATES).tasks,
                  "age": model.estimate_age([sys.argv[1]])[0]}))
"""


@pytest.mark.slow
def test_wheel_ships_the_artifacts_and_answers_like_the_repository(tmp_path, tiny_world):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist")], check=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("talk2face-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "site")
    for asset in ("templates/age.yaml", "tokenizers/synface/tokenizer.json", "tokenizers/synface-vqgan/model.safetensors",
                  "evaluators/synface/model.safetensors", "models/synface/model.safetensors"):
        assert f"talk2face/assets/{asset}" in names

    face = str(next((tiny_world["synface"] / "test").glob("*.png")))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE, face], check=True, capture_output=True, text=True,
                         cwd=elsewhere, env=env).stdout
    packaged = json.loads(out.strip().splitlines()[-1])

    from talk2face.facade import Talk2Face

    assert Path(packaged["root"]) == tmp_path / "site" / "talk2face" / "assets"
    assert set(packaged["tasks"]) == set(TASKS)
    assert packaged["age"] == pytest.approx(Talk2Face.from_pretrained().estimate_age([face])[0], abs=1e-4)
