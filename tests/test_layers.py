"""The inference library loads no training, CLI, benchmark or demo module, also at run time.

import-linter (setup.cfg, run by `make test`) checks the static imports; this test runs every task
in a fresh interpreter and checks `sys.modules`, which also sees imports made inside functions or
by import string, against the same forbidden list.
"""

import configparser
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RUN_EVERY_TASK = """
import json, sys
from talk2face.facade import Talk2Face
model = Talk2Face.from_pretrained(sys.argv[1], bf16=False)
face = sys.argv[2]
model.text_to_face("a smiling man", num_samples=1, seed=0)
model.caption([face], max_new_tokens=4)
model.estimate_age([face])
model.classify_attributes([face])
model.edit([face], "make them smile", seed=0)
model.prompt("to caption: {face}", face=face, max_new_tokens=4)
print(json.dumps(sorted(sys.modules)))
"""


def forbidden_modules() -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return cfg["importlinter:contract:inference-library"]["forbidden_modules"].split()


def test_every_task_runs_without_loading_a_forbidden_module(tiny_model, tiny_world):
    face = sorted((tiny_world["synface"] / "test").glob("*.png"))[0]
    out = subprocess.run([sys.executable, "-c", RUN_EVERY_TASK, str(tiny_model), str(face)],
                         capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    forbidden = forbidden_modules()
    assert "talk2face_train" in forbidden and "talk2face.facade" in loaded  # the list and the run are real
    assert sorted(loaded & set(forbidden)) == []
