"""Errors that are the user's to fix: the CLI prints them as one line, without a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class UserError(Exception):
    """Bad input: a missing file, a malformed line, a bad argument. The message says what to fix."""


def read_json(path: Path) -> Any:
    """A JSON file a user supplied (a config, a model card); a missing or malformed one raises
    UserError naming it, instead of a decoder's traceback."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); copy the file again") from None
