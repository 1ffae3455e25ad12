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


def _save(fig, path: Path) -> Path:
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def roc_curves(results: dict, path: Path) -> Path:
    """Figure 1: ROC curves on log-log axes, one panel per defense, all attacks."""
    plt = _plt()
    ds = results["defenses"]
    cols = min(len(ds), 3)
    rows = int(np.ceil(len(ds) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False, constrained_layout=True)
    names = sorted({a for e in ds for a in e["attacks"]})
    colour = {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(names)}
    style = {a: ["-", "--", ":", "-."][(i // len(PALETTE)) % 4] for i, a in enumerate(names)}
    for ax, e in zip(axes.flat, ds):
        floor = 1.0 / max(1, next(iter(e["attacks"].values()))["n_nonmembers"])
        for a, r in e["attacks"].items():
            f, t = np.asarray(r["roc"]["fpr"]), np.asarray(r["roc"]["tpr"])
            ax.plot(np.maximum(f, floor / 2), np.maximum(t, floor / 2), style[a], color=colour[a], lw=1.2, label=f"{a} ({r['auc']:.2f})")
        ax.plot([floor / 2, 1], [floor / 2, 1], color="0.6", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(floor / 2, 1)
        ax.set_ylim(floor / 2, 1)
        ax.set_title(e["name"], fontsize=10)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate (members)")
        ax.legend(fontsize=5.5, loc="lower right")
    for ax in list(axes.flat)[len(ds):]:
        ax.axis("off")
    fig.suptitle("Membership-inference ROC curves (log-log; legend: AUC)", fontsize=11)
    return _save(fig, path)


def frontier(results: dict, path: Path, fpr: str = "0.001") -> Path:
    """Figure 2: test accuracy against TPR at 0.1% FPR and against AUC, with CIs."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    groups: Dict[str, List[tuple]] = {}
    released = []
    for e in results["defenses"]:
        s = e.get("primary_attack")
        if s:
            groups.setdefault(e["defense"], []).append((e, s))
        if e.get("release_attack"):
            released.append((e, e["release_attack"]))
    for gi, (g, items) in enumerate(sorted(groups.items())):
        c, m = PALETTE[gi % len(PALETTE)], MARKERS[gi % len(MARKERS)]
        for ax, key, ci_key in ((axes[0], "tpr", "tpr_ci"), (axes[1], "auc", "auc_ci")):
            xs = [s[key] for _, s in items]
            ys = [e["test_accuracy"] for e, _ in items]
            err = None
            if all(s.get(ci_key) for _, s in items):
                err = np.array([[s[key] - s[ci_key][0], s[ci_key][1] - s[key]] for _, s in items]).T.clip(0)
            ax.errorbar(xs, ys, xerr=err, fmt=m, color=c, ms=7, capsize=3, label=g)
            if g == "dpsgd" and len(items) > 1:
                order = np.argsort([e["params"].get("eps", 0) for e, _ in items])
                ax.plot(np.array(xs)[order], np.array(ys)[order], "-", color=c, lw=1)
            for (e, s), x, y in zip(items, xs, ys):
                if e["params"]:
                    ax.annotate(",".join(f"{k}={v}" for k, v in e["params"].items()), (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
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
        ax.legend(fontsize=8)
    fig.suptitle("Privacy / utility frontier (up and to the left is better)", fontsize=11)
    return _save(fig, path)


def auc_over_steps(results: dict, path: Path) -> Path:
    """Figure 3: loss-attack AUC of the target against its training steps."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, e in enumerate(results["defenses"]):
        h = e.get("auc_over_steps") or []
        if not h:
            continue
        s, a = zip(*h)
        ax.plot(s, a, MARKERS[i % len(MARKERS)] + "-", color=PALETTE[i % len(PALETTE)], ms=3, lw=1.2, label=e["name"])
    ax.axhline(0.5, color="0.6", ls=":", lw=0.8)
    ax.set_xlabel("training steps of the target model")
    ax.set_ylabel("AUC of the loss-threshold attack")
    ax.set_title("Membership leakage during training", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _show(ax, img):
    ax.axis("off")
    if img is None or img.size == 0:
        return
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=255)


def images(results: dict, out_dir: Path, path: Path, per_row: int = 8) -> Optional[Path]:
    """Figure 4: synthetic images beside the members they started from; most exposed members."""
    plt = _plt()
    panels = []
    for e in results["defenses"]:
        key = e.get("key") or _key(e)
        rel = out_dir / "artifacts" / key / "released.npz"
        if rel.is_file():
            with np.load(rel) as z:
                syn = z["images_uint8"][:per_row]
                init = z["init_member_images"][:per_row] if "init_member_images" in z.files and z["init_member_images"].ndim == 4 else None
            panels.append((f"{e['name']}: synthetic", syn))
            if init is not None and len(init):
                panels.append((f"{e['name']}: member it was initialised from", init))
        vul = out_dir / "artifacts" / key / "vulnerable.npz"
        if vul.is_file():
            with np.load(vul) as z:
                if z["images"].ndim == 4:
                    panels.append((f"{e['name']}: most exposed members ({z['attack']})", z["images"][:per_row]))
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


def per_class(results: dict, path: Path, fpr: str = "0.01") -> Path:
    """Figure 5: TPR at 1% FPR by class for each defense (primary attack)."""
    plt = _plt()
    names = results["class_names"]
    ds = results["defenses"]
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(names) * max(1, len(ds)) / 2), 4))
    width = 0.8 / max(1, len(ds))
    x = np.arange(len(names))
    for i, e in enumerate(ds):
        s = e.get("primary_attack")
        if not s:
            continue
        sl = e["attacks"][s["name"]].get("slices", {})
        vals = [(sl.get(f"class={c}", {}).get("tpr_at_fpr") or {}).get(fpr, np.nan) for c in range(len(names))]
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, color=PALETTE[i % len(PALETTE)], label=f"{e['name']} ({s['name']})")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"TPR at {100 * float(fpr):g}% FPR")
    ax.set_title("Leakage by class", fontsize=11)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _key(entry: dict) -> str:
    return entry["defense"] + "".join(f"_{k}={v}" for k, v in entry["params"].items())
