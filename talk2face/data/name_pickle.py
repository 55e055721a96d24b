"""Read a pickled list of file names (Multi-Modal-CelebA-HQ's `filenames.pickle`) without running code.

A pickle is a program: `pickle.load` of a hostile copy can call any function. This unpickler
refuses every global (module.name), which is the only way a pickle can reach a callable, so only
plain data can be built; the result must then be a list of str (or Python 2 byte strings).
"""

from __future__ import annotations

import pickle
from pathlib import Path

from talk2face.errors import UserError


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"it asks for the global {module}.{name}")


def read_name_pickle(path: Path) -> list[str]:
    """The names in a pickled list of str/bytes; anything else raises UserError naming `path`."""
    try:
        with path.open("rb") as f:
            names = _NoGlobals(f, encoding="bytes").load()  # Python 2 str -> bytes, decoded below
    except Exception as err:  # a refused global, or any of the many errors of a corrupt pickle
        raise UserError(f"{path}: refused, not a plain pickled list of file names ({err}); nothing in it ran") from None
    if not isinstance(names, list) or not all(isinstance(n, (str, bytes)) for n in names):
        raise UserError(f"{path}: expected a pickled list of file names, got {type(names).__name__} "
                        f"{str(names)[:60]!r}")
    try:
        return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: a file name is not UTF-8 ({err})") from None
