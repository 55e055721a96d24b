"""Benchmark: SynFace faces per second, rendering + captions + PNG writing (`make bench`).

    python -m benchmarks.synface [--n 2000] [--size 64] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from talk2face.data.synface.generate import generate


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="images to write")
    parser.add_argument("--size", type=int, default=64, help="image side")
    parser.add_argument("--workers", type=int, default=None, help="processes (default min(2, CPUs))")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate(args.n, args.size, seed=0, out_dir=f"{tmp}/synface", workers=args.workers, progress=False)
        seconds = time.perf_counter() - start
    rate = args.n / seconds
    print(f"synface: {rate:.0f} faces/s ({args.n} faces at {args.size}x{args.size} in {seconds:.1f} s, "
          f"workers={args.workers or 'default'})")
    return rate


if __name__ == "__main__":
    main()
