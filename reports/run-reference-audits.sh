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
    for f in results.json results.csv report.md report.html signals.npz split.json training_config.json; do
        [ -f "$out/$f" ] && cp "$out/$f" "reports/$ds-cpu/$f"
    done
    # the figures too: figure 4 (images) is drawn from the run artifacts, which stay in WORK
    for f in "$out"/fig*.png; do
        [ -f "$f" ] && cp "$f" "reports/$ds-cpu/"
    done
    # the report again, beside the canary audits kept in reports/<dataset>-cpu/canaries.json
    .venv/bin/mi-defense report "reports/$ds-cpu" || exit 1
done
# What the committed audits hold and what they cost: the header of reports/cpu-reference.toml.
