"""Training recipes: how each kind of training set is trained, named and recorded.

An audit is only as good as its undefended baseline. A model trained on **real data** is
trained as a practitioner deploys it: cross-entropy, Adam with a short warm-up and cosine
decay, long enough to fit its training set (the length is in epochs, so the recipe means
the same for 100 or 5000 examples), augmentation as a recorded option (flips and crops for
RGB images, none for grey-scale). A model trained on a **distilled set** keeps FRePo's
evaluation protocol ("Dataset Distillation using Neural Feature Regression"); a random
real subset of the same size is trained with that same protocol, as "No Free Lunch in
'Privacy for Free: How does Dataset Condensation Help Privacy'" (Carlini, Feldman & Nasr)
prescribes, so the two differ only in what they train on. DP-SGD has its own recipe
(``defenses.dpsgd``). The recipes' settings are ``mi_defense.config``'s ``RealRecipe``,
``TrainConfig`` and ``DPSGDRecipe``; this module names and records them.
"""
from __future__ import annotations

from mi_defense.config import TrainConfig


def describe(cfg: TrainConfig, n_train: int, steps: int, rgb: bool, name: str, images: bool = True) -> dict:
    """The recipe as recorded in every result: its name, a sentence and the resolved settings
    (feature vectors, ``images=False``, are never augmented: ``training.loop``)."""
    aug = cfg.augment_mode(rgb) if images else "none"
    loss = "cross-entropy" if cfg.loss == "xent" else "MSE on centred one-hot (or learned) labels"
    batch = min(cfg.batch, n_train)
    epochs = steps * batch / max(n_train, 1)
    text = (f"{loss}, Adam {cfg.lr:g} ({min(cfg.warmup, steps // 2)}-step warm-up, cosine decay), batch {batch}, "
            f"{steps} steps ({epochs:.0f} epochs of {n_train} examples), augmentation: {aug}")
    return {"name": name, "description": text, "loss": cfg.loss, "lr": cfg.lr, "batch": batch, "steps": int(steps),
            "epochs": round(epochs, 2), "augment": aug, "width": cfg.width, "depth": cfg.depth}
