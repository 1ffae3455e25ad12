"""Flag groups of the ``mi-defense`` parser, kept apart so the command parsers stay short: the
data folder several commands take, the distillation's DP-FRePo and run flags, and the flags
``audit`` and ``run`` share."""
from __future__ import annotations

import argparse


def data_dir_arg(sp) -> None:
    sp.add_argument("--data-dir", metavar="DIR",
                    help="folder holding dataset copies (DIR/<name>/...); also $MI_DEFENSE_DATA")


def add_distill_dp_args(ds) -> None:
    from mi_defense.config import CLIP_SPACES, MECHANISMS

    ds.add_argument("--epsilon", type=float, help="DP-FRePo: release an (epsilon, delta)-differentially private set "
                    "(noise start; per-example clipping, Gaussian noise and RDP accounting at every step, or "
                    "--mechanism once); with quick it then defaults "
                    "to --batch-real 1024 and --steps 500, a better signal-to-noise ratio per step, and to --init "
                    "smooth-noise")
    ds.add_argument("--delta", type=float, help="DP-FRePo: delta, below 1/n (default min(1e-5, 1/n^1.1) for n members; "
                    "with --mechanism once 1e-5, and required above 35 112 members)")
    ds.add_argument("--clip", type=float, help="DP-FRePo: per-example clipping norm (default 1)")
    ds.add_argument("--clip-space", choices=CLIP_SPACES, help="DP-FRePo: clip each example's gradient with respect to "
                    "the KRR readout (default; classes x features entries, so less noise per step) or the synthetic "
                    "features and labels")
    ds.add_argument("--mechanism", choices=MECHANISMS, help="DP-FRePo: per-step (default; a clipped, noisy KRR "
                    "gradient at every step) or once (noisy class means under --networks random ConvNets released "
                    "once, then --steps optimisation steps that spend no privacy)")
    ds.add_argument("--networks", type=int, help="DP-FRePo --mechanism once: random networks, one release each "
                    "(default 4)")


def add_distill_run_args(ds) -> None:
    from mi_defense.config import STRATEGIES

    ds.add_argument("--no-learn-labels", action="store_true", help="freeze the labels at the centred one-hot")
    ds.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                    help="add horizontal flips inside the kernel (default: on for RGB)")
    ds.add_argument("--seed", type=int, help="seed of the initial set, the pool and the real batches (default 0; with "
                    "--epsilon a secret one from the operating system's entropy, kept in the private run record)")
    ds.add_argument("--members", type=int, help="number of members (default: 90%% of the training pool; drawn with the "
                    "seed, or with --epsilon from the operating system's entropy)")
    ds.add_argument("--split", metavar="JSON", help="use a saved split.json instead of drawing one")
    ds.add_argument("--checkpoint-every", type=int, help="outer steps between checkpoints (default 200; 0: none)")
    ds.add_argument("--resume", action="store_true", help="continue from the checkpoint in DIR/PRIVATE-do-not-release/")
    ds.add_argument("--keep-checkpoint", action="store_true",
                    help="keep the checkpoint after a finished distillation (removed by default)")
    ds.add_argument("--jit", action="store_true", help="compile the step with XLA (faster on GPU, slower on CPU)")
    ds.add_argument("--strategy", choices=STRATEGIES, help="mirrored: split the real batch over all GPUs")
    ds.add_argument("--tensorboard", action="store_true",
                    help="write TensorBoard scalars to DIR/PRIVATE-do-not-release/tensorboard")
    ds.add_argument("--quiet", action="store_true", help="no progress bar")


def add_audit_args(sp) -> None:
    """The flags ``audit`` and ``run`` share."""
    from mi_defense.config import RUN_PRESETS

    sp.add_argument("--preset", default="quick", choices=list(RUN_PRESETS),
                    help="quick (default): small ConvNets (width 32), 4 reference runs, minutes on a CPU; standard: "
                         "the setting to publish (width 64, 16 reference runs, 5000 + 5000 examples on Fashion-MNIST); "
                         "cheap: standard with 4 reference runs and RMIA online declared (about a third of the "
                         "training; kept 95%% of the 16-run attack's AUC advantage on an undefended MNIST model)")
    sp.add_argument("--dataset", default=None,
                    help="dataset name, .npz file or image folder (default: the preset's, digits or fashion_mnist)")
    data_dir_arg(sp)
    sp.add_argument("--config", metavar="TOML", help="a TOML file with [audit], [train] and [distill] tables")
    sp.add_argument("--defense", action="append", metavar="SPEC",
                    help="repeatable: none[:epochs=E], subset[:n=K], dpsgd:eps=E[,clip=C,batch=B,steps=S,lr=L], "
                         "frepo:ipc=K[,init=real,lr=L,steps=S], "
                         "frepo:ipc=K,eps=E[,clip=C,clip_space=S,init=I,mechanism=M,networks=N] "
                         "(DP-FRePo, from smoothed noise unless init= says otherwise) (default: the preset's; quick: "
                         "none, subset, dpsgd:eps=8,steps=500, frepo:ipc=10)")
    sp.add_argument("--attack", action="append", metavar="NAME",
                    help="repeatable; default: every applicable attack ('mi-defense attacks' lists them)")
    sp.add_argument("--primary-attack", metavar="NAME", help="the attack the verdict, frontier and epsilon bound use, "
                    "declared before scoring (default: lira_online_fixed below 64 reference runs, lira_online from 64, "
                    "threshold_loss without)")
    sp.add_argument("--references", type=int,
                    help="reference runs per defense for LiRA/RMIA (even; 0 disables; preset quick 4, standard 16)")
    sp.add_argument("--model", metavar="FILE.py:FN", help="your architecture instead of the ConvNet/MLP for every "
                    "model but FRePo's pool and dpsgd-linear: FN(input_shape, num_classes, seed) returns an uncompiled "
                    "tf.keras.Model with num_classes logits (also package.module:FN); each defense keeps its recipe, "
                    "DP-SGD wraps it")
    sp.add_argument("--width", type=int,
                    help="ConvNet width of every trained and pool model (preset quick 32, standard 64)")
    sp.add_argument("--depth", type=int, help="ConvNet depth (preset quick 2, standard 3)")
    sp.add_argument("--targets", type=int, help="target models per defense, different seeds (default 1)")
    sp.add_argument("--members", type=int, help="members: the private training set the defense sees (default: the "
                    "preset's on its own dataset, else half the pool up to that number; the rest of the pool minus the "
                    "test share is held out)")
    sp.add_argument("--nonmembers", type=int, help="held-out non-members for the audit (default: as many as members)")
    sp.add_argument("--real-steps", type=int, help="DP-SGD training steps (default 1000)")
    sp.add_argument("--bootstrap", type=int,
                    help="bootstrap resamples for confidence intervals (default 100 for quick, 200 for standard)")
    sp.add_argument("--seed", type=int, help="seed of the split, the reference halves and every run (default 0)")
    sp.add_argument("--shard", metavar="i/n", help="train only the i-th of n shares of the runs; merge later without "
                    "--shard (batch schedulers: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    sp.add_argument("--executor", default="local", choices=["local", "ray"],
                    help="local: train runs one by one in this process (default); ray: one Ray task per run "
                         "(pip install 'mi-defense[ray]'; the driver writes the results)")
    sp.add_argument("--ray-address", metavar="ADDR",
                    help="Ray cluster to join (default $RAY_ADDRESS, else a local Ray runtime)")
    sp.add_argument("--together", type=int, default=1, metavar="R",
                    help="train up to R reference runs of a defense in one graph (default 1; pays on a GPU, slower on "
                         "a CPU: see bench train)")
    sp.add_argument("--quiet", action="store_true", help="no progress bars")
