#!/bin/sh
# The measurements of reports/dpsgd-recipes/README.md, in order (each step resumable).
# MNIST: the whole grid, then the picks on the reference members. Fashion-MNIST: the ScatterNet
# grid and its picks, plus the package defaults (the MNIST picks) for the ConvNet.
cd "$(dirname "$0")/../.." || exit 1
export MI_DEFENSE_DATA="${MI_DEFENSE_DATA:-/work/shared/data}"
run() { .venv/bin/python -m mi_defense.bench.dpsgd_tuning "$@"; }
[ "$1" = fashion ] || run --dataset mnist --out reports/dpsgd-recipes/mnist --final >> reports/dpsgd-recipes/logs/mnist.log 2>&1 || exit 1
run --dataset fashion_mnist --out reports/dpsgd-recipes/fashion_mnist --only dpsgd-linear --final \
    --defaults dpsgd:eps=1,dpsgd:eps=8 >> reports/dpsgd-recipes/logs/fashion_mnist.log 2>&1
