"""The picture of a released set: ``distilled.png``, one row of images per class, in pixel space."""
from __future__ import annotations

import numpy as np


def save_grid(path, images_uint8: np.ndarray, labels: np.ndarray, class_names, ipc: int) -> None:
    """Write ``images_uint8`` to ``path`` (PNG, atomically): a row per class of up to 20 images,
    the class names on the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mi_defense.io import atomic_path

    n_cls = len(class_names)
    cols = min(ipc, 20)
    fig, axes = plt.subplots(n_cls, cols, figsize=(cols * 1.1 + 1.5, n_cls * 1.1), squeeze=False)
    for c in range(n_cls):
        idx = np.flatnonzero(labels == c)[:cols]
        for j in range(cols):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(idx):
                img = images_uint8[idx[j]]
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                          vmin=0, vmax=255)
        axes[c, 0].text(-0.3, 0.5, class_names[c], transform=axes[c, 0].transAxes, ha="right", va="center", fontsize=7)
    fig.suptitle("FRePo synthetic set (pixel space)", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
