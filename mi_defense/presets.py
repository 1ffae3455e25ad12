"""Presets for ``mi-defense run``: the whole pipeline with chosen defenses and attacks.

* ``quick``: the bundled ``digits`` set, small ConvNets (width 32, depth 2), models on
  distilled or subset data trained for 1000 steps whatever the set's size, 4 reference
  runs; finishes in a few minutes on a 2-core CPU. A smoke test of the whole pipeline, not a publishable audit
  (4 reference runs are far too few for LiRA's full strength).
* ``standard``: the setting to publish: Fashion-MNIST, defenses none, DP-SGD at epsilon
  1, 4, 8, FRePo at 1, 10, 50 images per class and a random real subset of each of those
  sizes (10, 100, 500 images), 5000 members and 5000
  non-members (so TPR at 0.1% FPR is resolved), and 16 reference runs for LiRA / RMIA (64
  where a GPU or a cluster makes it affordable: ``--references 64``).
  Its cost is dominated by the 17 runs per defense; spread them with ``--shard``.
"""
from __future__ import annotations

from mi_defense.audit import AuditConfig
from mi_defense.config import DistillConfig, TrainConfig

RUN_PRESETS = {
    "quick": AuditConfig(
        dataset="digits", members=500, nonmembers=500, references=4, bootstrap=100,
        defenses=("none", "subset", "dpsgd:eps=8", "frepo:ipc=10"),
        train=TrainConfig(width=32, depth=2, steps=1000),
        distill=DistillConfig(width=32, depth=2, batch_real=128, steps=300, pool_size=4, max_online_updates=50, checkpoint_every=0),
    ),
    "standard": AuditConfig(
        dataset="fashion_mnist", members=5000, nonmembers=5000, references=16, bootstrap=200,
        defenses=("none", "subset:n=10", "subset:n=100", "subset:n=500", "dpsgd:eps=1", "dpsgd:eps=8",
                  "dpsgd-linear:eps=1", "dpsgd-linear:eps=8", "frepo:ipc=1", "frepo:ipc=10", "frepo:ipc=50"),
        train=TrainConfig(width=64, depth=3),
        distill=DistillConfig(width=64, depth=3, batch_real=256, steps=2000, checkpoint_every=0),
    ),
}
