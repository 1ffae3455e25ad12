"""Exploration: distil against private statistics released once (see HOW.md beside this file).

Usage: [MODE=krr|dm] [PROJ=p] python reports/dp-frepo-once/explore.py EPS K WIDTH STEPS [NORM] [BETA] [DATASET] [MODELS]

Members: the tuning half of reports/dp-frepo-disjoint (27 000 images); validation: the
tuning half's 3 000 held-out images. No reporting-half image and no test image is read.
K random ConvNets (seeds 1000..), features normalised to unit norm (optionally after a
fixed random projection to PROJ dimensions), one full-batch Gaussian release per network,
accounted with dp_accounting's RDP accountant (K compositions, delta 1e-5):
  MODE=krr: (A, B) = (sum_i f_i f_i^T, sum_i f_i y_i^T), FRePo's KRR loss tr(h A h^T) - 2 tr(h B)
            (sensitivity sqrt(1 + beta^2 (1 - 1/C)); the noisy A projected onto the PSD cone);
  MODE=dm:  per-class feature sums and class counts (sensitivity sqrt(2)), matched by the
            synthetic class means (distribution matching).
Then STEPS LAMB steps on the synthetic set against the cached noisy statistics (post-processing),
and one evaluation model (FRePo's protocol, width 64). Appends a line to results.jsonl.
Exploration code, not the package's mechanism: the noise here is drawn from a fixed seed.
"""
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dp-frepo-disjoint"))
from run import halves, tuning_split  # noqa: E402

from mi_defense.accounting import epsilon_for  # noqa: E402
from mi_defense.config import TrainConfig  # noqa: E402
from mi_defense.data import load_dataset  # noqa: E402
from mi_defense.data.transforms import Transform  # noqa: E402
from mi_defense.distillation.api import noise_start  # noqa: E402
from mi_defense.distillation.dp_readout import krr_readout  # noqa: E402
from mi_defense.distillation.krr import label_margin_loss  # noqa: E402
from mi_defense.distillation.lamb import lamb_update  # noqa: E402
from mi_defense.models import build_model  # noqa: E402
from mi_defense.tfenv import tf  # noqa: E402
from mi_defense.training.evaluate import evaluate_set  # noqa: E402
from mi_defense.training.schedules import cosine_lr  # noqa: E402
from mi_defense.training.targets import centred_onehot  # noqa: E402

CACHE = os.environ.get("CACHE", "/tmp/dp-frepo-once-cache")  # raw (noise-free) statistics: private
eps, K, width, steps = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
norm = sys.argv[5] if len(sys.argv) > 5 else "instance"
beta = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0
dsname = sys.argv[7] if len(sys.argv) > 7 else "mnist"
eval_models = int(sys.argv[8]) if len(sys.argv) > 8 else 1
C = 10
ds = load_dataset(dsname)
tune, _ = halves(len(ds.x_train))
sp = tuning_split(ds, tune)
mem, val = sp.members, sp.test
tr = Transform.fixed(1, True)
x_m = tr(ds.x_train[mem]).astype(np.float32)
y_m = ds.y_train[mem]
x_v, y_v = tr(ds.x_train[val]), ds.y_train[val]
n = len(x_m)
delta = 1e-5


def eps_of(sigma):
    return epsilon_for(sigma, 1.0, K, delta)  # K full-batch (q = 1) Gaussian releases


lo, hi = 0.1, 1000.0
while hi - lo > 1e-3 * hi:
    mid = (lo + hi) / 2
    lo, hi = (lo, mid) if eps_of(mid) <= eps else (mid, hi)
sigma = hi
ynorm = np.sqrt(1 - 1 / C)
sens = np.sqrt(1 + beta ** 2 * ynorm ** 2)
print(f"n={n} K={K} sigma={sigma:.3f} eps={eps_of(sigma):.3f} sens={sens:.3f} noise std {sigma * sens:.2f}", flush=True)

models = [build_model((28, 28, 1), C, width=width, depth=3, norm=norm, seed=1000 + k) for k in range(K)]


PROJ = int(os.environ.get("PROJ", "0"))
MODE = os.environ.get("MODE", "krr")
projs = [None if not PROJ else tf.constant(np.random.default_rng(77 + k).standard_normal(
    (models[0].feature_dim, PROJ)).astype(np.float32) / np.sqrt(PROJ)) for k in range(K)]
if MODE == "krr" and not PROJ and models[0].feature_dim > 1024:
    sys.exit(f"MODE=krr needs PROJ (a {models[0].feature_dim}x{models[0].feature_dim} second moment per network is "
             "too large); set PROJ=64, for example")


def feats(k, x):
    f = models[k].features(x, training=False)
    if PROJ:
        f = f @ projs[k]
    return f / tf.maximum(tf.norm(f, axis=1, keepdims=True), 1e-12)


rng = np.random.default_rng(12345)
Y = centred_onehot(tf.constant(y_m), C).numpy().astype(np.float64)


def raw_stats(k):
    path = os.path.join(CACHE, f"{dsname}-w{width}-{norm}-k{k}-p{PROJ}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return z["A"], z["B"], z["S"]
    A = B = S = 0.0
    onehot = np.eye(C)[y_m]
    for i in range(0, n, 2000):
        f = feats(k, x_m[i:i + 2000]).numpy().astype(np.float64)
        if f.shape[1] <= 1024:
            A = A + f.T @ f
        B = B + f.T @ Y[i:i + 2000]
        S = S + f.T @ onehot[i:i + 2000]
    os.makedirs(CACHE, exist_ok=True)
    np.savez(path, A=A, B=B, S=S)
    return A, B, S


stats = []
t0 = time.time()
for k in range(K):
    A, B, S = raw_stats(k)
    if MODE == "dm":
        sd = sigma * np.sqrt(2.0)
        S_hat = S + rng.standard_normal(S.shape) * sd
        cnt = np.bincount(y_m, minlength=C) + rng.standard_normal(C) * sd
        stats.append((tf.constant(S_hat / np.maximum(cnt, 1.0)), None))
    else:
        d = A.shape[0]
        E = rng.standard_normal((d, d)) * sigma * sens
        E = np.triu(E) + np.triu(E, 1).T
        A_hat = A + E
        B_hat = B + rng.standard_normal(B.shape) * sigma * sens / beta
        w, V = np.linalg.eigh(A_hat)
        A_hat = (V * np.maximum(w, 0)) @ V.T
        if k == 0:
            print(f"d={d} top eig A {np.linalg.eigvalsh(A)[-5:].round(1)} "
                  f"noise spec {np.abs(np.linalg.eigvalsh(E)).max():.1f}", flush=True)
        stats.append((tf.constant(A_hat / n), tf.constant(B_hat / n)))
print(f"stats {time.time() - t0:.0f}s", flush=True)

labels = np.repeat(np.arange(C), 10)
x_syn = tf.Variable(noise_start(len(labels), (28, 28, 1), 2.0, 7))
y_syn = tf.Variable(centred_onehot(tf.constant(labels), C))
learn = [x_syn, y_syn]
ms = [tf.Variable(tf.zeros_like(v)) for v in learn]
vs = [tf.Variable(tf.zeros_like(v)) for v in learn]
LR = 0.01


def make_step(k):
    A_k, B_k = stats[k]
    params = [x_syn] if MODE == "dm" else learn  # distribution matching keeps the labels fixed

    @tf.function
    def step(s):
        with tf.GradientTape() as tape:
            f_s = tf.cast(feats(k, x_syn), tf.float64)
            if MODE == "dm":
                mu = tf.reduce_mean(tf.reshape(f_s, [C, -1, f_s.shape[-1]]), axis=1)  # C x d
                loss = tf.cast(tf.reduce_sum(tf.square(mu - tf.transpose(A_k))), tf.float32)
            else:
                h = krr_readout(f_s, tf.cast(y_syn, tf.float64), 1e-6)  # C x d
                loss = 0.5 * (tf.linalg.trace(h @ A_k @ tf.transpose(h)) - 2 * tf.linalg.trace(h @ B_k))
                loss = tf.cast(loss, tf.float32) + label_margin_loss(y_syn, C)
        g = tape.gradient(loss, params)
        for var, gi, mm, vv in zip(params, g, ms, vs):
            lr = cosine_lr(s, steps, LR, 0.1)
            p, m2, v2 = lamb_update(var, gi, mm, vv, s + 1, lr, b1=0.9)
            var.assign(p)
            mm.assign(m2)
            vv.assign(v2)
        return loss
    return step


fns = [make_step(k) for k in range(K)]
t0 = time.time()
for s in range(steps):
    loss = fns[rng.integers(K)](tf.constant(s, tf.int64))
    if (s + 1) % max(1, steps // 10) == 0:
        print(f"step {s + 1} loss {float(loss):.5f} {time.time() - t0:.0f}s", flush=True)
cfg = TrainConfig(width=64, depth=3)
t0 = time.time()
r = evaluate_set(x_syn.numpy(), y_syn.numpy(), x_v, y_v, C, cfg, models=eval_models, progress=False)
print(f"RESULT proj={PROJ} mode={MODE} eps={eps} K={K} width={width} steps={steps} norm={norm} beta={beta} {dsname}: "
      "val acc "
      f"{r['test_accuracy_mean']:.4f} {r['test_accuracy']} eval {time.time() - t0:.0f}s", flush=True)
with open(os.path.join(HERE, "results.jsonl"), "a") as out:
    out.write(json.dumps({"dataset": dsname, "mode": MODE, "epsilon": eps, "achieved_epsilon": round(eps_of(sigma), 4),
                          "delta": delta, "networks": K, "width": width, "norm": norm, "projection": PROJ,
                          "beta": beta, "steps": steps, "noise_multiplier": sigma, "eval_models": eval_models,
                          "validation_accuracy": r["test_accuracy"], "eval_train_steps": r["train_steps"]}) + "\n")
