"""The `talk2face` command.

Each subcommand lives next to the code it drives, as a module that defines
`add_arguments(parser)` and `run(args) -> int` ("module"), or as such a pair bundled in an object
of a module ("module:object", for the prompting commands that share one module). Modules are imported only when their subcommand
runs, so `talk2face --help` stays fast and inference commands need no training extras.
User mistakes (`UserError`) print one line and exit 2; never a traceback. Every `--help` shows
the options' defaults; a trainer's lists its config keys too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Callable

from talk2face.config import describe
from talk2face.errors import UserError

# subcommand -> (module[:object], one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("talk2face.data.synface.cli", "render the SynFace data set"),
    "data": ("talk2face.data.inspect", "inspect a data source: counts per split and label"),
    "tokenize": ("talk2face_train.pretokenize", "VQ-encode every image of a source once, to Arrow"),
    "eval": ("talk2face.evaluation.benchmark", "benchmark every task of a model on a test split (make eval)"),
    "generate": ("talk2face.commands:generate", "text to face: generate faces from a description"),
    "caption": ("talk2face.commands:caption", "describe faces in words"),
    "age": ("talk2face.commands:age", "estimate the age of faces"),
    "attributes": ("talk2face.commands:attributes", "classify the CelebA attributes of faces"),
    "edit": ("talk2face.commands:edit", "edit a face by an instruction"),
    "prompt": ("talk2face.commands:prompt", "answer any template string, e.g. 'to caption: {face}'"),
    "serve": ("talk2face.serve", "a local web page (Gradio) with every task of a model"),
    # training (talk2face_train): CONFIG [--key=value ...], as `accelerate launch -m <module> CONFIG` takes it
    "train": ("talk2face_train.train:command", "train the decoder on every task (an experiments/ config)"),
    "train-vqgan": ("talk2face_train.vqgan:command", "train the image tokenizer (a VQGAN)"),
    "train-evaluator": ("talk2face_train.evaluator:command", "train the evaluator that judges generated faces"),
    "train-text-tokenizer": ("talk2face_train.text_tokenizer", "train the text tokenizer on the captions"),
}


def load_command(target: str):
    """Import "module" or "module:object": something with add_arguments(parser) and run(args)."""
    module, _, attr = target.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help; epilogs (a trainer's config keys) kept line by line."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == "":  # "(default: None)" says nothing
            return action.help
        return super()._get_help_string(action)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="talk2face", description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {importlib.metadata.version('talk2face')}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="also print the library's info messages")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print results and errors only: no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=HelpFormatter)
        if name == wanted:  # import only the module that runs
            mod = load_command(module)
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


class ConfigCommand:
    """A trainer as a subcommand: `CONFIG [--key=value ...]`, handed to its `main(argv)`; `config` is its dataclass."""

    def __init__(self, main: Callable[[list[str]], object], config: type) -> None:
        self.main = main
        self.config = config
        self.__doc__ = sys.modules[main.__module__].__doc__  # the trainer's own description

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("config", help="a YAML config, e.g. experiments/synface-small.yaml")
        parser.add_argument("overrides", nargs=argparse.REMAINDER, help="--key=value ... (e.g. --optim.max_steps=800)")
        # read from the dataclass itself, so the listing never drifts from what the trainer accepts
        parser.epilog = "config keys (set in CONFIG, or as --key=value):\n" + "\n".join(describe(self.config))

    def run(self, args: argparse.Namespace) -> int:
        self.main([args.config, *args.overrides])
        return 0


def run_standalone(module: object, prog: str, argv: list[str] | None = None) -> int:
    """`python -m <module>` for a module written like a subcommand (add_arguments + run)."""
    parser = argparse.ArgumentParser(prog=prog, description=(module.__doc__ or "").strip().splitlines()[0],
                                     formatter_class=HelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(module.run(args) or 0)
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        with contextlib.ExitStack() as quiet:
            if args.quiet:  # progress bars and warnings write to sys.stderr; results go to stdout
                quiet.enter_context(contextlib.redirect_stderr(quiet.enter_context(open(os.devnull, "w"))))
            return int(args._run(args) or 0)
    except UserError as err:  # stderr is back by now: the one-line error is always shown
        print(f"talk2face {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
