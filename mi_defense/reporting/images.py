"""The report's figure 4 (PNG): each released synthetic set, beside the members it was
initialised from where it was, and the members the declared attack ranks highest with their
scores. Drawn from the run artifacts beside results.json (``audit.artifacts``)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import numpy as np

from mi_defense.reporting.figures import _names, _plt, _save


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


class Panel(NamedTuple):
    kind: str         # "init" | "synthetic" (no member its start) | "members" | "unscored" |
                      # "flat" (no member stands out)
    defense: str
    title: str
    images: Optional[np.ndarray]  # uint8, (n, h, w, c); None for a row of text
    labels: Optional[List[str]]   # one line under each image
    note: str = ""


def _artifact_panels(e: dict, art: Path, per_row: int) -> List[Panel]:
    """The image rows one defense's artifacts give: the released set, the members it was
    initialised from (when its initialisation copied members), the most exposed members with
    their attack scores (a line of text instead when the scores are all equal)."""
    panels, name = [], e["name"]
    rel = art / "released.npz"
    if rel.is_file():
        with np.load(rel, allow_pickle=False) as z:
            syn = z["images_uint8"][:per_row]
            init = (z["init_member_images"][:per_row]
                    if "init_member_images" in z.files and z["init_member_images"].ndim == 4 else None)
        if init is not None and len(init):
            panels += [Panel("init", name, f"{name}: synthetic", pixels(syn), None),
                       Panel("init", name, f"{name}: member it was initialised from", pixels(init), None)]
        else:
            start = (e.get("metadata") or {}).get("init")
            how = f"initialised from {start}" if start and start != "real" else "no member recorded as its start"
            panels.append(Panel("synthetic", name, f"{name}: synthetic ({how})", pixels(syn), None, how))
    vul = art / "vulnerable.npz"
    if vul.is_file():
        with np.load(vul, allow_pickle=False) as z:
            imgs, attack = z["images"], str(z["attack"])
            scores = np.asarray(z["scores"][:per_row], np.float64) if "scores" in z.files else None
        if (imgs.ndim == 4 and scores is not None and len(scores)
                and np.allclose(scores, scores[0], rtol=1e-9, atol=1e-12)):
            panels.append(Panel("flat", name, f"{name}: most exposed members ({attack})", None, None,
                                f"no member stands out: the {len(scores)} highest member scores under {attack} are all "
                                f"{scores[0]:.3g}, so any members drawn here would be arbitrary"))
        elif imgs.ndim == 4 and scores is not None and len(scores):
            panels.append(Panel("members", name, f"{name}: most exposed members ({attack}; rank: score)",
                                pixels(imgs[:per_row]), [f"#{k + 1}: {v:.3g}" for k, v in enumerate(scores)]))
        elif imgs.ndim == 4:
            panels.append(Panel("unscored", name, f"{name}: most exposed members ({attack})", pixels(imgs[:per_row]),
                                None))
    for p in panels:
        if p.images is not None and (p.images.ndim != 4 or p.images.shape[-1] not in (1, 3, 4)):
            raise ValueError(f"images of shape {p.images.shape} for '{p.title}'")
    return panels


def images_caption(panels: List[Panel]) -> str:
    """Figure 4's caption, by what its rows show."""
    by: Dict[str, List[str]] = {}
    for p in panels:
        by.setdefault(p.kind, []).append(p.defense)
    bits = []
    if "init" in by:
        bits.append(f"synthetic images of {_names(by['init'])} next to the members they were initialised from")
    for p in (p for p in panels if p.kind == "synthetic"):
        bits.append(f"synthetic images of {p.defense} ({p.note}: no member is its start)")
    what = ("the members the declared attack (the release attack for a released set, else the primary attack) "
            "ranks highest")
    if "members" in by:
        bits.append(f"{what} for {_names(by['members'])}, with each one's rank and attack score under it "
                    "(higher: more exposed)")
    if "unscored" in by:
        bits.append(f"{what} for {_names(by['unscored'])} (no scores recorded)")
    if "flat" in by:
        bits.append(f"for {_names(by['flat'])} no member stands out (the highest scores are all equal), "
                    "so no member is drawn")
    text = "; ".join(bits)
    return text[:1].upper() + text[1:] + "."


def images(results: dict, out_dir: Path, path: Path, per_row: int = 8) -> Optional[Path]:
    """Figure 4: released images (beside the members they started from, where they did);
    the most exposed members with their scores. None when the artifacts hold no image."""
    from mi_defense.errors import UserError
    from mi_defense.io import NPZ_READ_ERRORS

    plt = _plt()
    panels: List[Panel] = []
    for e in results["defenses"]:
        art = out_dir / "artifacts" / (e.get("key") or _key(e))
        try:
            panels += _artifact_panels(e, art, per_row)
        except NPZ_READ_ERRORS + (TypeError,) as exc:
            raise UserError(f"{art}: a run artifact is unreadable ({exc}); delete {art} and re-run "
                            f"'mi-defense audit --out {out_dir}' to rewrite it (cached runs are reused)") from None
    if not panels:
        return None
    ratios = [0.45 if p.images is None else 1.0 + 0.2 * bool(p.labels) for p in panels]
    height = 1.15 * sum(ratios) + 0.4
    fig, axes = plt.subplots(len(panels), per_row, figsize=(per_row * 0.9, height), squeeze=False,
                             gridspec_kw={"height_ratios": ratios})
    # a fixed margin for the title, whatever the height
    fig.subplots_adjust(top=1 - 0.55 / height, bottom=0.1 / height, hspace=0.6)
    for r, p in enumerate(panels):
        for c in range(per_row):
            _show(axes[r, c], p.images[c] if p.images is not None and c < len(p.images) else None)
            if p.labels and c < len(p.labels):
                axes[r, c].text(0.5, -0.04, p.labels[c], transform=axes[r, c].transAxes, ha="center", va="top",
                                fontsize=7)
        axes[r, 0].set_title(p.title, fontsize=8, loc="left")
        if p.images is None:
            axes[r, 0].text(0, 0.5, p.note, transform=axes[r, 0].transAxes, ha="left", va="center", fontsize=8,
                            style="italic")
    fig.suptitle("Released images and exposed members", fontsize=10, y=1 - 0.12 / height)
    return _save(fig, path, images_caption(panels))


def _key(entry: dict) -> str:
    return entry["defense"] + "".join(f"_{k}={v}" for k, v in entry["params"].items())
