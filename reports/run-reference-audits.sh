#!/bin/sh
# Regenerate the reference audits (reports/<dataset>-cpu) with reports/cpu-reference.toml.
#
#   sh reports/run-reference-audits.sh [WORK] [DATASET...]    train what is missing, score, copy into reports/
#   sh reports/run-reference-audits.sh --save [WORK] [DATASET...]   only copy the finished runs into reports/
#
# Every trained run is one file, WORK/<dataset>-cpu/cache/<defense>/<run>.npz (its logits on the
# universe, the positions it trained on, what it released). The committed copies in
# reports/<dataset>-cpu/cache/ are copied into WORK first, so the audit resumes from every run
# committed before, on any machine (a run already in WORK is kept); --save copies WORK's runs
# back over the committed ones, so a partial audit can be committed and continued elsewhere.
# Any attack can be re-scored from these files without training: the audit trains only what
# is missing from the cache. At the end the finished folder (results, report, signals.npz) is
# copied into reports/ and the report re-rendered there with its canary audits. Two machines
# (or two cores) can share the work: mi-defense audit ... --shard 0/2 and --shard 1/2 into one
# WORK (the options this script passes), then this script to score.
cd "$(dirname "$0")/.." || exit 1
export MI_DEFENSE_DATA="${MI_DEFENSE_DATA:-../shared/data}"
save_only=0
[ "$1" = --save ] && { save_only=1; shift; }
work="${1:-../audits}"
[ $# -gt 0 ] && shift
for ds in ${@:-mnist fashion_mnist}; do
    out="$work/$ds-cpu"
    mkdir -p "$out/cache" "reports/$ds-cpu/cache"
    if [ "$save_only" = 1 ]; then
        # a run being written is a hidden temporary file until renamed: never committed
        cp -R "$out/cache/." "reports/$ds-cpu/cache/" && find "reports/$ds-cpu/cache" -name '.*.tmp' -delete && echo "$ds: $(find "reports/$ds-cpu/cache" -name '*.npz' | wc -l) runs in reports/$ds-cpu/cache"
        continue
    fi
    cp -Rn "reports/$ds-cpu/cache/." "$out/cache/"
    # the canary audits (reports/canaries/run.sh) are scored into each DP defense's entry
    [ -f "reports/$ds-cpu/canaries.json" ] && cp "reports/$ds-cpu/canaries.json" "$out/canaries.json"
    # reports/<dataset>-cpu/defenses.txt, when present, names the defenses of that audit (one per
    # line; Fashion-MNIST's has six of the configuration's), else the configuration's list is used
    rows=""
    [ -f "reports/$ds-cpu/defenses.txt" ] && for d in $(cat "reports/$ds-cpu/defenses.txt"); do rows="$rows --defense $d"; done
    .venv/bin/mi-defense audit --config reports/cpu-reference.toml --dataset "$ds" --out "$out" $rows --quiet || exit 1
    cp -R "$out/cache/." "reports/$ds-cpu/cache/"
    for f in results.json results.csv report.md report.html signals.npz split.json training_config.json fig*.png; do
        [ -f "$out/$f" ] && cp "$out/$f" "reports/$ds-cpu/$f"
    done
    # the report again, beside the canary audits kept in reports/<dataset>-cpu/canaries.json
    .venv/bin/mi-defense report "reports/$ds-cpu" || exit 1
done
# The reference audits committed in reports/: 9.1 hours of training summed over the runs for MNIST's nine
# defenses and 4.7 for the six of Fashion-MNIST (reports/fashion_mnist-cpu/defenses.txt), half that in wall time with one process per core;
# 17 runs each, the FRePo rows cost most. 1000 members and 1000 non-members, 16 reference
# runs per defense (LiRA with a fixed variance is the declared primary attack at this
# count). The undefended model is trained with the real-data recipe (cross-entropy to
# convergence); each FRePo size is paired with a random real subset of the same size,
# trained with the same distilled-data protocol (1000 steps instead of FRePo's 2000 for 100
# images, to fit the CPU budget; both sides of the comparison alike); DP-SGD at epsilon 1 and 8
# with its tuned recipe for a linear model on ScatterNet features (dpsgd-linear; chosen on
# training images outside this audit's universe: reports/dpsgd-recipes/);
# FRePo from white noise (the default start, which copies no member) and DP-FRePo at epsilon 8.
# The inputs' normalisation is fixed ([0, 1] pixels to [-1, 1]) for every defense (transform =
# "auto": fixed because DP defenses are audited), so no DP guarantee leans on statistics of the
# members. The ConvNet DP-SGD (epsilon 1 and 8) is left out to fit the CPU budget: one run at
# epsilon 8 takes about 36 minutes on 2 cores, 10 hours for its 17 runs, and it is the weaker
# DP-SGD on these members (reports/dpsgd-recipes/mnist/final-fixed.json); its update step is
# audited by the canary audits instead (reports/canaries/). The defenses are listed in the order
# they train, the undefended model and the cheap DP rows first.
