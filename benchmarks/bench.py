"""`make bench`: every speed target of the project, measured on this machine, printed.

    python -m benchmarks.bench [--vqgan DIR] [--data DIR]

1. SynFace rendering (faces/s),
2. the image tokenizer: PSNR, codebook usage, pre-tokenization images/s, codes vs pixels on the fly,
   attributes the evaluator still sees on reconstructions (needs a trained VQGAN and evaluator:
   `make demo` makes them in runs/demo/; skipped otherwise),
3. decoder training: bf16 vs fp32, loop overhead, MFU,
4. generation: vs the Talk2Face reference decoding, constraints, guidance, analysis images/s.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from benchmarks import generation, synface, training
from talk2face import shipped
from talk2face.device import cpu_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vqgan", default=str(shipped.VQGAN), help="a trained VQGAN folder")
    parser.add_argument("--data", default="data/synface", help="the SynFace folder it was trained on")
    parser.add_argument("--evaluator", default=str(shipped.EVALUATOR), help="a trained evaluator folder")
    args = parser.parse_args(argv)
    cpu, date = cpu_model(), datetime.date.today().isoformat()  # every figure below was measured on this CPU
    print(f"== SynFace ({cpu}, {date}) ==")
    synface.main([])
    print(f"\n== image tokenizer ({cpu}, {date}) ==")
    if Path(args.vqgan, "config.json").exists() and Path(args.data).is_dir():
        from benchmarks import vqgan as bench_vqgan

        judge = ["--evaluator", args.evaluator] if Path(args.evaluator, "config.json").exists() else []
        bench_vqgan.main(["--vqgan", args.vqgan, "--data", args.data, *judge])
    else:
        print(f"skipped: no trained VQGAN at {args.vqgan} (run `make demo` first)")
    print(f"\n== decoder training ({cpu}, {date}) ==")
    training.main([])
    print(f"\n== generation ({cpu}, {date}) ==")
    generation.main([])


if __name__ == "__main__":
    main()
