"""Build hook: the shipped SynFace artifacts (task templates, tokenizers, evaluator, model) are copied
into the wheel as `talk2face/assets/`, so a non-editable install (`pip install .`) finds them through
`importlib.resources` from any folder (`talk2face/shipped.py`). The repository keeps them at its top
level, where an editable install reads them in place."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ASSETS = ("templates", "tokenizers", "evaluators", "models")


class BuildPyWithAssets(build_py):
    def run(self) -> None:
        super().run()
        for name in ASSETS:
            shutil.copytree(name, Path(self.build_lib) / "talk2face" / "assets" / name, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithAssets})
