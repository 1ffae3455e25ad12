#!/bin/sh
# Regenerate the reference audits (reports/<dataset>-cpu) with reports/cpu-reference.toml.
# Every run is cached in WORK/<dataset>-cpu/cache, so a killed script resumes where it
# stopped; the finished folder (results, report, signals.npz; not the cache) is copied
# into reports/ at the end and the report re-rendered there with its canary audits. Usage: sh reports/run-reference-audits.sh [WORK] [DATASET...]
cd "$(dirname "$0")/.." || exit 1
export MI_DEFENSE_DATA="${MI_DEFENSE_DATA:-../shared/data}"
work="${1:-../audits}"
[ $# -gt 0 ] && shift
for ds in ${@:-mnist fashion_mnist}; do
    out="$work/$ds-cpu"
    mkdir -p "$out"
    rows=""  # Fashion-MNIST's audit has six of the configuration's defenses
    [ "$ds" = fashion_mnist ] && for d in none subset:n=100 frepo:ipc=10 frepo:ipc=10,init=noise dpsgd-linear:eps=8 \
        dpsgd-linear:eps=1; do rows="$rows --defense $d"; done
    .venv/bin/mi-defense audit --config reports/cpu-reference.toml --dataset "$ds" --out "$out" $rows --quiet || exit 1
    mkdir -p "reports/$ds-cpu"
    for f in results.json results.csv report.md report.html signals.npz split.json training_config.json fig*.png; do
        [ -f "$out/$f" ] && cp "$out/$f" "reports/$ds-cpu/$f"
    done
    # the report again, beside the canary audits kept in reports/<dataset>-cpu/canaries.json
    .venv/bin/mi-defense report "reports/$ds-cpu" || exit 1
done
