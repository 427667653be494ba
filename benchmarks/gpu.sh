#!/usr/bin/env bash
# The GPU training benchmark (benchmarks/bench_training.py --preset gpu) on a lent H100/H200.
#
# The device machine (../.library/device) has python3 with torch and transformers but no network, so the packages it
# lacks travel as wheels, and the tokenized inputs travel from this checkout:
#
#   bash benchmarks/gpu.sh prepare     # here, after `dvc repro pack`: fills .gpu/ (ignored by git, ~30 MB)
#   device run, carry [".gpu"]:  bash benchmarks/gpu.sh run
#
# `run` writes $OUT/training_gpu.json (copy it to benchmarks/results/) and $OUT/log.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
    rm -rf .gpu && mkdir -p .gpu/wheels .gpu/data
    # the device image's python is 3.12; versions are the ones installed here, so both sides run the same code
    pins=$(python -m pip list --format=freeze | grep -iE '^(trl|datasets|dill|multiprocess|pydantic|pydantic.core|annotated.types|typing.inspection|duckdb)==')
    python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        -d .gpu/wheels $pins liger-kernel
    cp -r data/mixture data/tokenizer .gpu/data/
    du -sh .gpu
    ;;
run)
    python3 -m pip install --quiet --no-deps --no-index .gpu/wheels/*.whl
    mkdir -p data && cp -r .gpu/data/* data/
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    PYTHONUNBUFFERED=1 PYTHONPATH=. python3 -m benchmarks.bench_training --preset gpu \
        --output "${OUT:-benchmarks/results}/training_gpu.json" 2>&1 | tee "${OUT:-.}/log"
    ;;
*)
    echo "usage: bash benchmarks/gpu.sh prepare|run" >&2
    exit 2
    ;;
esac
