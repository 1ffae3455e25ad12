"""The report's figures (PNG, matplotlib), in the Okabe-Ito colour-blind-safe palette."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

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


def _save(fig, path: Path) -> Path:
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


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
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 5.0 * rows), squeeze=False, constrained_layout=True)
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
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False, title="attack (AUC)", title_fontsize=7)
    for ax in list(axes.flat)[len(ds):]:
        ax.axis("off")
    fig.suptitle("Membership-inference ROC curves (log-log): the primary attack and the strongest by AUC", fontsize=11)
    return _save(fig, path)


def frontier(results: dict, path: Path, fpr: str = "0.001") -> Path:
    """Figure 2: test accuracy against TPR at 0.1% FPR and against AUC, with CIs."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    groups: Dict[str, List[tuple]] = {}
    released = []
    for e in results["defenses"]:
        s = e.get("primary_attack")
        if s:
            groups.setdefault(e["defense"], []).append((e, s))
        if e.get("release_attack"):
            released.append((e, e["release_attack"]))
    dcol = defense_colours(results)
    for gi, (g, items) in enumerate(sorted(groups.items())):
        m = MARKERS[gi % len(MARKERS)]
        for ax, key, ci_key in ((axes[0], "tpr", "tpr_ci"), (axes[1], "auc", "auc_ci")):
            xs = [s[key] for _, s in items]
            ys = [e["test_accuracy"] for e, _ in items]
            if g == "dpsgd" and len(items) > 1:
                order = np.argsort([e["params"].get("eps", 0) for e, _ in items])
                ax.plot(np.array(xs)[order], np.array(ys)[order], "-", color="0.6", lw=1)
            for (e, s), x, y in zip(items, xs, ys):
                err = None
                if s.get(ci_key):
                    err = np.array([[s[key] - s[ci_key][0]], [s[ci_key][1] - s[key]]]).clip(0)
                ax.errorbar([x], [y], xerr=err, fmt=m, color=dcol[e["name"]], ms=7, capsize=3, label=e["name"])
    for i, (e, r) in enumerate(released):
        for ax, key in ((axes[0], "tpr"), (axes[1], "auc")):
            ax.plot([r[key]], [e["test_accuracy"]], "x", color="k", ms=8, label=f"attack on the released set ({r['name']})" if i == 0 else None)
            ax.annotate(e["name"], (r[key], e["test_accuracy"]), fontsize=6, xytext=(4, -8), textcoords="offset points")
    primary = next((e["primary_attack"]["name"] for e in results["defenses"] if e.get("primary_attack")), "primary attack")
    axes[0].set_xlabel(f"TPR at {100 * float(fpr):g}% FPR, {primary} (declared before scoring)")
    axes[1].set_xlabel(f"AUC of {primary}")
    axes[1].axvline(0.5, color="0.6", ls=":", lw=0.8)
    for ax in axes:
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.suptitle("Privacy / utility frontier (up and to the left is better)", fontsize=11)
    return _save(fig, path)


def auc_over_steps(results: dict, path: Path) -> Path:
    """Figure 3: loss-attack AUC of the target against its training steps."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    dcol = defense_colours(results)
    for i, e in enumerate(results["defenses"]):
        h = e.get("auc_over_steps") or []
        if not h:
            continue
        s, a = zip(*h)
        ax.plot(s, a, MARKERS[i % len(MARKERS)] + "-", color=dcol[e["name"]], ms=3, lw=1.2, label=e["name"])
    ax.axhline(0.5, color="0.6", ls=":", lw=0.8)
    ax.set_xlabel("training steps of the target model")
    ax.set_ylabel("AUC of the loss-threshold attack")
    ax.set_title("Membership leakage during training", fontsize=11)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return _save(fig, path)


def pixels(img: np.ndarray) -> np.ndarray:
    """Images as uint8 pixels: uint8 as they are, float in [0, 1] scaled by 255 (the range
    the data layer gives float images), float above 1 taken as 0..255."""
    if img.dtype == np.uint8:
        return img
    img = np.nan_to_num(np.asarray(img, np.float64))
    return np.clip(np.round(img * 255.0 if img.size and img.max() <= 1.0 else img), 0, 255).astype(np.uint8)


def _show(ax, img):
    ax.axis("off")
    if img is None or img.size == 0:
        return
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=255)


def _artifact_panels(e: dict, art: Path, per_row: int) -> List[tuple]:
    """The image rows one defense's artifacts give (released set, its initial members, exposed members)."""
    panels = []
    rel = art / "released.npz"
    if rel.is_file():
        with np.load(rel, allow_pickle=False) as z:
            syn = z["images_uint8"][:per_row]
            init = z["init_member_images"][:per_row] if "init_member_images" in z.files and z["init_member_images"].ndim == 4 else None
        panels.append((f"{e['name']}: synthetic", pixels(syn)))
        if init is not None and len(init):
            panels.append((f"{e['name']}: member it was initialised from", pixels(init)))
    vul = art / "vulnerable.npz"
    if vul.is_file():
        with np.load(vul, allow_pickle=False) as z:
            if z["images"].ndim == 4:
                panels.append((f"{e['name']}: most exposed members ({z['attack']})", pixels(z["images"][:per_row])))
    for title, imgs in panels:
        if imgs.ndim != 4 or imgs.shape[-1] not in (1, 3, 4):
            raise ValueError(f"images of shape {imgs.shape} for '{title}'")
    return panels


def images(results: dict, out_dir: Path, path: Path, per_row: int = 8) -> Optional[Path]:
    """Figure 4: synthetic images beside the members they started from; most exposed members."""
    from mi_defense.errors import UserError
    from mi_defense.io import NPZ_READ_ERRORS

    plt = _plt()
    panels = []
    for e in results["defenses"]:
        art = out_dir / "artifacts" / (e.get("key") or _key(e))
        try:
            panels += _artifact_panels(e, art, per_row)
        except NPZ_READ_ERRORS + (TypeError,) as exc:
            raise UserError(f"{art}: a run artifact is unreadable ({exc}); delete {art} and re-run 'mi-defense audit --out "
                            f"{out_dir}' to rewrite it (cached runs are reused)") from None
    if not panels:
        return None
    height = len(panels) * 1.15 + 0.4
    fig, axes = plt.subplots(len(panels), per_row, figsize=(per_row * 0.9, height), squeeze=False)
    fig.subplots_adjust(top=1 - 0.55 / height, bottom=0.1 / height)  # a fixed margin for the title, whatever the height
    for r, (title, imgs) in enumerate(panels):
        for c in range(per_row):
            _show(axes[r, c], imgs[c] if c < len(imgs) else None)
        axes[r, 0].set_title(title, fontsize=7, loc="left")
    fig.suptitle("Released images and exposed members", fontsize=10, y=1 - 0.12 / height)
    return _save(fig, path)


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
    any_unresolved, any_resolved = False, False
    for i, e in enumerate(ds):
        s = e.get("primary_attack")
        if not s:
            continue
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
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _key(entry: dict) -> str:
    return entry["defense"] + "".join(f"_{k}={v}" for k, v in entry["params"].items())
