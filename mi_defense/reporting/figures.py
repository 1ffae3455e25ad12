"""The report's figures (PNG, matplotlib), in the Okabe-Ito colour-blind-safe palette."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from mi_defense.auditing.record import AttackSummary, DefenseEntry
from mi_defense.io import atomic_path

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MARKERS = "osD^vP*Xh<>"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # defense and class names are user text: "$...$" in them must not be read as mathtext
    plt.rcParams["text.parse_math"] = False
    return plt


def defense_colours(results: dict) -> Dict[str, str]:
    """One colour per defense (by its place in the audit), the same in every figure."""
    return {e["name"]: PALETTE[i % len(PALETTE)] for i, e in enumerate(results["defenses"])}


CAPTION_KEY = "Description"  # the PNG text chunk that carries a figure's caption
LEGEND = 9  # legend font size in every figure


def _save(fig, path: Path, caption: str) -> Path:
    """Write ``fig`` as PNG with its ``caption`` in the file, so a figure kept from an earlier
    render (its run artifacts gone) keeps the caption that describes it."""
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={CAPTION_KEY: caption})
    plt.close(fig)
    return path


def caption(path: Path) -> Optional[str]:
    """The caption written into a figure by ``_save`` (None for a figure drawn without one)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return (getattr(im, "text", None) or {}).get(CAPTION_KEY)
    except (OSError, ValueError, SyntaxError):
        return None


def _names(names) -> str:
    """Distinct names in order, as words: "a", "a and b", "a, b and c" ("" for none)."""
    names = list(dict.fromkeys(names))
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def _unresolved(entry: dict, s: dict) -> bool:
    """Whether a declared attack's headline TPR is at an FPR below 1/#non-members: the rule of
    the report's text (``DefenseEntry.unresolved``), applied to the JSON of the entry."""
    return DefenseEntry.from_json(entry).unresolved(AttackSummary.from_json(s))


def _log_axes(ax, low: float) -> None:
    """Log-log axes from ``low`` to 1 with plain tick labels (mathtext is off for user text)."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, 1)
    ax.set_ylim(low, 1)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def roc_curves(results: dict, path: Path, highlight: int = 3) -> Path:
    """Figure 1: ROC curves on log-log axes, one panel per defense: the primary attack and
    the ``highlight`` attacks of highest AUC in colour, every other attack in grey."""
    plt = _plt()
    ds = results["defenses"]
    dcol = defense_colours(results)
    cols = min(len(ds), 3)
    rows = int(np.ceil(len(ds) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 5.4 * rows), squeeze=False, constrained_layout=True)
    grey = False
    for ax, e in zip(axes.flat, ds):
        floor = 1.0 / max(1, next(iter(e["attacks"].values()), {}).get("n_nonmembers", 1))
        primary = (e.get("primary_attack") or {}).get("name")
        ranked = sorted(e["attacks"], key=lambda a: -e["attacks"][a]["auc"])
        shown = ([primary] if primary in e["attacks"] else []) + [a for a in ranked if a != primary][:highlight]
        for a in [a for a in e["attacks"] if a not in shown] + shown:  # highlighted curves drawn last, on top
            r = e["attacks"][a]
            f, t = np.asarray(r["roc"]["fpr"]), np.asarray(r["roc"]["tpr"])
            if a in shown:
                k = shown.index(a)
                ax.plot(np.maximum(f, floor / 2), np.maximum(t, floor / 2), ["-", "--", "-.", ":"][k % 4],
                        color=PALETTE[(k + 1) % len(PALETTE)] if k else "k", lw=1.6,
                        label=f"{a} ({r['auc']:.3f})" + (" primary" if a == primary else ""))
            else:
                ax.plot(np.maximum(f, floor / 2), np.maximum(t, floor / 2), "-", color="0.8", lw=0.7)
        ax.plot([], [], "-", color="0.8", lw=0.7, label="other attacks")
        ax.plot([floor / 2, 1], [floor / 2, 1], color="0.6", lw=0.8, ls=":")
        _log_axes(ax, floor / 2)
        ax.set_title(e["name"], fontsize=10, color=dcol[e["name"]])
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate (members)")
        ax.legend(fontsize=LEGEND, loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False, title="attack (AUC)",
                  title_fontsize=LEGEND)
        grey |= len(e["attacks"]) > len(shown)
    for ax in list(axes.flat)[len(ds):]:
        ax.axis("off")
    fig.suptitle("Membership-inference ROC curves (log-log): the primary attack and the strongest by AUC", fontsize=11)
    primaries = [e["primary_attack"]["name"] for e in ds if (e.get("primary_attack") or {}).get("name") in e["attacks"]]
    text = ("ROC curves on log-log axes, one panel per defense: "
            + (f"the primary attack ({_names(primaries)}) in black and " if primaries else "")
            + f"the {highlight} {'other ' if primaries else ''}attacks of highest AUC in colour"
            + ("; every other attack in grey" if grey else "") + "; AUC in the legend.")
    return _save(fig, path, text)


def _dp_kinds(groups: Dict[str, List[tuple]]) -> List[Tuple[str, List[tuple]]]:
    """The DP-SGD points of one kind (one defense, the same settings but epsilon) that a line
    joins in order of epsilon: kinds with at least two points, each named for the caption."""
    kinds: Dict[tuple, List[tuple]] = {}
    for g, items in groups.items():
        for e, s in items:
            if g.startswith("dpsgd") and "eps" in e["params"]:
                rest = tuple(sorted((k, str(v)) for k, v in e["params"].items() if k != "eps"))
                kinds.setdefault((g, rest), []).append((e, s))
    return [(g + "".join(f",{k}={v}" for k, v in rest), sorted(items, key=lambda i: float(i[0]["params"]["eps"])))
            for (g, rest), items in sorted(kinds.items()) if len(items) >= 2]


def _frontier_points(axes, groups: Dict[str, List[tuple]], dcol: Dict[str, str]) -> bool:
    """Each defense's primary attack on both panels, its TPR hollow where unresolved; whether any is."""
    hollow = False
    for gi, (_, items) in enumerate(sorted(groups.items())):
        for ax, key, ci_key in ((axes[0], "tpr", "tpr_ci"), (axes[1], "auc", "auc_ci")):
            for e, s in items:
                if s.get(key) is None:
                    continue
                open_ = key == "tpr" and _unresolved(e, s)  # a TPR at zero false positives, not a measured one
                hollow |= open_
                err = None
                if s.get(ci_key):
                    err = np.array([[s[key] - s[ci_key][0]], [s[ci_key][1] - s[key]]]).clip(0)
                c = dcol[e["name"]]
                ax.errorbar([s[key]], [e["test_accuracy"]], xerr=err, fmt=MARKERS[gi % len(MARKERS)], color=c,
                            mfc="white" if open_ else c, mew=1.6, ms=7, capsize=3,
                            label=e["name"] if key == "auc" else None)
    return hollow


def frontier(results: dict, path: Path) -> Optional[Path]:
    """Figure 2: test accuracy against the primary attack's TPR at its declared FPR and
    against its AUC, with CIs; unresolved TPRs hollow. None when no defense has a primary attack."""
    plt = _plt()
    groups: Dict[str, List[tuple]] = {}
    released = []
    for e in results["defenses"]:
        if e.get("primary_attack"):
            groups.setdefault(e["defense"], []).append((e, e["primary_attack"]))
        if e.get("release_attack"):
            released.append((e, e["release_attack"]))
    if not groups:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    hollow = _frontier_points(axes, groups, defense_colours(results))
    joined = _dp_kinds(groups)
    for _, items in joined:
        for ax, key in ((axes[0], "tpr"), (axes[1], "auc")):
            pts = [(s[key], e["test_accuracy"]) for e, s in items if s.get(key) is not None]
            ax.plot([x for x, _ in pts], [y for _, y in pts], "-", color="0.6", lw=1, zorder=0)
    for i, (e, r) in enumerate(released):
        for ax, key in ((axes[0], "tpr"), (axes[1], "auc")):
            if r.get(key) is None:
                continue
            open_ = key == "tpr" and _unresolved(e, r)
            hollow |= open_
            ax.plot([r[key]], [e["test_accuracy"]], "X", color="k", mfc="white" if open_ else "k", ms=8,
                    label=f"attack on the released set ({r['name']})" if i == 0 and key == "auc" else None)
            ax.annotate(e["name"], (r[key], e["test_accuracy"]), fontsize=7, xytext=(4, -9), textcoords="offset points")
    if hollow:
        axes[1].plot([], [], "o", color="0.3", mfc="white", mew=1.6, ls="none",
                     label="unresolved (hollow, left panel):\nFPR below 1/#non-members")
    primaries = _names(s["name"] for items in groups.values() for _, s in items)
    fpr = f"{100 * float(groups[min(groups)][0][1]['fpr']):g}%"
    axes[0].set_xlabel(f"TPR at {fpr} FPR, {primaries} (declared before scoring)")
    axes[1].set_xlabel(f"AUC of {primaries}")
    axes[1].axvline(0.5, color="0.6", ls=":", lw=0.8)
    for ax in axes:
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=LEGEND, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.suptitle("Privacy / utility frontier (up and to the left is better)", fontsize=11)
    text = (f"Privacy/utility frontier: test accuracy against the primary attack's ({primaries}, declared before "
            f"scoring) TPR at {fpr} FPR (left) and AUC (right), with 95% bootstrap CIs")
    if hollow:
        text += (f"; hollow markers: unresolved TPRs ({fpr} FPR is below "
                 f"1/{results['split'].get('n_nonmembers') or '#'} non-members, so the value drawn is the TPR at zero "
                 "false positives, not a TPR measured at that FPR)")
    if joined:
        text += "; a grey line joins the DP-SGD points of " + _names(k for k, _ in joined) + " in order of epsilon"
    if released:
        text += f"; crosses: the attack on a released set ({_names(r['name'] for _, r in released)})"
    return _save(fig, path, text + ".")


STEPS_ATTACK = "threshold_loss"  # the attack whose AUC an audit records during training (results' auc_over_steps)


def auc_over_steps(results: dict, path: Path) -> Optional[Path]:
    """Figure 3: the AUC of the attack the audit records during training (the loss threshold)
    against the target's training steps; None when no defense has such a record."""
    plt = _plt()
    ds = results["defenses"]
    drawn = [(i, e) for i, e in enumerate(ds) if e.get("auc_over_steps")]
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    dcol = defense_colours(results)
    ends = {e["name"]: e["auc_over_steps"][-1][0] for _, e in drawn}
    trained = {e["name"]: (e.get("metadata") or {}).get("train_steps") for e in ds}
    for i, e in drawn:
        s, a = zip(*e["auc_over_steps"])
        steps = f" ({trained[e['name']]} steps)" if len(set(ends.values())) > 1 and trained[e["name"]] else ""
        ax.plot(s, a, MARKERS[i % len(MARKERS)] + "-", color=dcol[e["name"]], ms=3, lw=1.2, label=e["name"] + steps)
    primaries = [e["primary_attack"]["name"] for e in ds if e.get("primary_attack")]
    is_primary = set(primaries) == {STEPS_ATTACK}
    ax.axhline(0.5, color="0.6", ls=":", lw=0.8)
    ax.set_xlabel("training steps of the target model")
    ax.set_ylabel(f"AUC of {STEPS_ATTACK}" + (" (primary attack)" if is_primary else " (loss threshold)"))
    ax.set_title("Membership leakage during training", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=LEGEND, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    if is_primary:
        text = f"AUC of the primary attack, {STEPS_ATTACK}, against the target's training steps"
    else:
        others = [p for p in primaries if p != STEPS_ATTACK]
        text = (f"AUC of the loss-threshold attack ({STEPS_ATTACK})"
                + (f", not of the primary attack ({_names(others)})," if others else "")
                + " against the target's training steps: the audit records per-step scores only for the "
                "loss-threshold attack, which needs the target's outputs alone"
                + (" (LiRA and RMIA would need every reference run scored at every step too)"
                   if any(p.startswith(("lira", "rmia")) for p in others) else ""))
    if len(set(ends.values())) > 1:
        text += ("; the lines stop at different steps because the models train for different numbers of steps (in the "
                 "legend) and the AUC is recorded at fixed intervals: compare leakage at a common step, not at a "
                 "line's end")
    missing = [e["name"] for e in ds if not e.get("auc_over_steps")]
    if missing:
        text += "; no per-step record for " + _names(f"{n} (trained {trained[n]} steps)" if trained[n] else n
                                                     for n in missing)
    return _save(fig, path, text + ".")


def per_class(results: dict, path: Path, fpr: str = "0.01") -> Optional[Path]:
    """Figure 5: TPR at 1% FPR by class for each defense (primary attack); None (no figure)
    when no class holds enough non-members to resolve that FPR."""
    plt = _plt()
    names = results["class_names"]
    ds = results["defenses"]
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(names) * max(1, len(ds)) / 2), 4))
    width = 0.8 / max(1, len(ds))
    x = np.arange(len(names))
    dcol = defense_colours(results)
    any_unresolved, any_resolved, primaries = False, False, []
    for i, e in enumerate(ds):
        s = e.get("primary_attack")
        if not s:
            continue
        primaries.append(s["name"])
        sl = e["attacks"][s["name"]].get("slices", {})
        cls = [sl.get(f"class={c}", {}) for c in range(len(names))]
        vals = [(c.get("tpr_at_fpr") or {}).get(fpr, np.nan) for c in cls]
        bad = [fpr in (c.get("unresolved_fprs") or []) for c in cls]  # too few non-members in the class
        any_unresolved |= any(bad)
        any_resolved |= any(not b and not np.isnan(v) for b, v in zip(bad, vals))
        bars = ax.bar(x + i * width - 0.4 + width / 2, vals, width, color=dcol[e["name"]])
        ax.bar([np.nan], [np.nan], color=dcol[e["name"]], label=f"{e['name']} ({s['name']})")  # legend entry, unhatched
        for b, unresolved in zip(bars, bad):
            if unresolved:
                b.set_hatch("///")
                b.set_alpha(0.45)
    if not any_resolved:
        plt.close(fig)
        return None
    if any_unresolved:
        ax.bar([np.nan], [np.nan], color="white", edgecolor="0.3", hatch="///",
               label=f"unresolved: the class has fewer than {1 / float(fpr):g} non-members")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("class")
    ax.set_ylabel(f"TPR at {100 * float(fpr):g}% FPR")
    ax.set_title("Leakage by class", fontsize=11)
    ax.legend(fontsize=LEGEND, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    text = f"TPR at {100 * float(fpr):g}% FPR of the primary attack ({_names(primaries)}), by class and defense"
    if any_unresolved:
        text += (f"; hatched, faded bars are unresolved: the class has fewer than {1 / float(fpr):g} non-members, so "
                 "the bar is the TPR at zero false positives")
    return _save(fig, path, text + ".")
