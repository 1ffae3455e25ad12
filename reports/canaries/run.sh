#!/bin/sh
# The canary audits shown in the reference audits' reports (reports/<dataset>-cpu/canaries.json).
# One step (white box, the mechanism's own update, many trials) at epsilon 1, correct and with
# the noise or the clipping broken, and at the settings of each DP defense of the audit
# (--step-of: its own noise multiplier, clip and delta); one run (the whole defense trained once with 1000
# mislabelled canaries each included with probability 1/2) for DP-SGD at epsilon 1 and 8 and,
# on MNIST, for DP-FRePo at epsilon 8 (per step and released once) and the ConvNet DP-SGD the
# audit leaves out, correct and (DP-SGD only) with the noise broken, and the undefended model
# as the no-claim control. The release-once DP-FRePo's one release at epsilon 1 and 8, correct
# and broken, is audited at the noise multiplier of the MNIST audit's release-once rows (four networks).
# Each result is skipped when its JSON exists. Usage: sh reports/canaries/run.sh [DATASET]
cd "$(dirname "$0")/../.." || exit 1
export MI_DEFENSE_DATA="${MI_DEFENSE_DATA:-../shared/data}"
ds="${1:-mnist}"
out="reports/canaries/$ds"
mkdir -p "$out"
into="reports/$ds-cpu"  # the audit whose report shows them
c() { name="$1"; shift; [ -f "$out/$name.json" ] || .venv/bin/mi-defense canary "$@" --json "$out/$name.json" --into "$into" || exit 1; }
if [ "$ds" = mnist ]; then  # the one-step audits do not depend on the dataset
    c step-dpsgd-eps1 --mechanism dpsgd --epsilon 1 --trials 120
    c step-dpsgd-eps1-break-noise --mechanism dpsgd --epsilon 1 --trials 120 --break noise
    c step-dpsgd-eps1-break-clip --mechanism dpsgd --epsilon 1 --trials 120 --break clip
    c step-dp-frepo-eps1 --mechanism dp-frepo --epsilon 1 --trials 200
    c step-dp-frepo-eps1-break-noise --mechanism dp-frepo --epsilon 1 --trials 200 --break noise
    c step-dp-frepo-eps1-break-clip --mechanism dp-frepo --epsilon 1 --trials 200 --break clip
    # the release-once mechanism's one release at epsilon 1 and 8 (four networks, as the audit's rows
    # frepo:ipc=10,eps=E,mechanism=once: its noise multiplier depends on epsilon, delta and the networks only)
    for e in 1 8; do
        for b in "" noise clip; do
            c "step-dp-frepo-once-eps$e${b:+-break-$b}" --mechanism dp-frepo-once --epsilon "$e" ${b:+--break $b}
        done
    done
fi
# one step of each DP defense of the audit at its own settings (the noise multiplier, clip and delta it is
# calibrated to on the audit's 1000 members), correct and broken: the one-step audits its verdict counts
step() { c "$1" --step-of "$2" --config reports/cpu-reference.toml --dataset "$ds" --trials 200 $3; }
for e in 1 8; do
    for b in "" noise clip; do
        step "step-of-dpsgd-linear-eps$e${b:+-break-$b}" "dpsgd-linear:eps=$e" "${b:+--break $b}"
    done
done
if [ "$ds" = mnist ]; then  # DP-FRePo is a DP defense of the MNIST audit only
    for b in "" noise clip; do
        step "step-of-dp-frepo-eps8${b:+-break-$b}" frepo:ipc=10,eps=8,init=noise "${b:+--break $b}"
    done
fi
run() { c "$1" --one-run "$2" --config reports/cpu-reference.toml --dataset "$ds" --canaries 1000 $3; }
run one-run-dpsgd-linear-eps1 dpsgd-linear:eps=1
run one-run-dpsgd-linear-eps1-break-noise dpsgd-linear:eps=1 "--break noise"
run one-run-dpsgd-linear-eps8 dpsgd-linear:eps=8
run one-run-dpsgd-linear-eps8-break-noise dpsgd-linear:eps=8 "--break noise"
run one-run-none none
if [ "$ds" = mnist ]; then  # DP defenses of the MNIST audit only (and the ConvNet DP-SGD it leaves out)
    run one-run-dpsgd-eps8 dpsgd:eps=8
    run one-run-dpsgd-eps8-break-noise dpsgd:eps=8 "--break noise"
    run one-run-dp-frepo-eps8 frepo:ipc=10,eps=8,init=noise
    run one-run-dp-frepo-once-eps8 frepo:ipc=10,eps=8,mechanism=once
fi
