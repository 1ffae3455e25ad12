import json
from pathlib import Path

import numpy as np
import pytest

from mi_defense.cli import main
from mi_defense.config import DistillConfig
from mi_defense.data import Transform, load_dataset, make_split
from mi_defense.distillation.frepo import FRePo, choose_init_indices
from mi_defense.distillation.krr import krr_loss, label_margin_loss
from mi_defense.distillation.lamb import lamb_update
from mi_defense.distillation.pool import initial_counters, next_counter
from mi_defense.errors import UserError
from mi_defense.tfenv import tf


# ------------------------------------------------------------------ KRR loss
def np_krr_loss(fs, ys, ft, yt, reg):
    kss = fs @ fs.T
    kts = ft @ fs.T
    kreg = kss + reg * np.trace(kss) / len(fs) * np.eye(len(fs))
    pred = kts @ np.linalg.solve(kreg, ys)
    return np.mean(0.5 * np.sum((pred - yt) ** 2, axis=1))


def test_krr_loss_and_gradient_match_float64_reference():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4, 3))      # synthetic "images"
    ys = rng.standard_normal((4, 2))
    xt = rng.standard_normal((6, 3))
    yt = rng.standard_normal((6, 2))
    w = rng.standard_normal((3, 5))        # a tiny feature map F = tanh(x W)
    reg = 1e-3

    def np_loss(xs_):
        return np_krr_loss(np.tanh(xs_ @ w), ys, np.tanh(xt @ w), yt, reg)

    xs_tf = tf.Variable(xs)
    with tf.GradientTape() as tape:
        loss = krr_loss(tf.tanh(xs_tf @ w), tf.constant(ys), tf.constant(np.tanh(xt @ w)), tf.constant(yt), reg)
    grad = tape.gradient(loss, xs_tf).numpy()
    assert abs(float(loss) - np_loss(xs)) < 1e-8 * np_loss(xs)
    fd = np.zeros_like(xs)
    h = 1e-6
    for i in np.ndindex(xs.shape):
        e = np.zeros_like(xs)
        e[i] = h
        fd[i] = (np_loss(xs + e) - np_loss(xs - e)) / (2 * h)
    assert np.allclose(grad, fd, rtol=1e-4, atol=1e-7)


def test_krr_interpolates_support_set_with_tiny_ridge():
    rng = np.random.default_rng(1)
    fs = rng.standard_normal((5, 20))
    ys = rng.standard_normal((5, 3))
    assert float(krr_loss(tf.constant(fs), tf.constant(ys), tf.constant(fs), tf.constant(ys), 1e-9)) < 1e-12


def test_label_margin_loss_known_answer():
    y = tf.constant([[0.9, 0.0, 0.0], [0.5, 0.45, 0.0]])
    # first label: margin 0.9 >= 1/3 -> 0; second: 1/3 - 0.05
    assert abs(float(label_margin_loss(y, 3)) - (1 / 3 - 0.05) / 2) < 1e-6


# ------------------------------------------------------------------ LAMB
def np_lamb(p, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-6):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    u = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    r = np.linalg.norm(p) / np.linalg.norm(u)
    return p - lr * r * u, m, v


@pytest.mark.parametrize("b1", [0.9, 0.99])
def test_lamb_matches_numpy_reference(b1):
    rng = np.random.default_rng(0)
    p = rng.standard_normal((3, 4))
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    pt, mt, vt = tf.constant(p), tf.constant(m), tf.constant(v)
    for t in range(1, 6):
        g = rng.standard_normal(p.shape)
        p, m, v = np_lamb(p, g, m, v, t, 0.01, b1=b1)
        pt, mt, vt = lamb_update(pt, tf.constant(g), mt, vt, t, 0.01, b1=b1)
    assert np.allclose(pt.numpy(), p, rtol=1e-10, atol=1e-12)
    # the trust ratio makes the step size relative: ||dp|| = lr * ||p||
    q = tf.constant(np.full((2, 2), 3.0))
    q2, _, _ = lamb_update(q, tf.constant(np.ones((2, 2))), tf.zeros((2, 2), tf.float64), tf.zeros((2, 2), tf.float64),
                           1, 0.1)
    assert abs(np.linalg.norm(q.numpy() - q2.numpy()) - 0.1 * 6.0) < 1e-9


# ------------------------------------------------------------------ pool
def test_pool_counters_staggered():
    assert initial_counters(10, 100).tolist() == list(range(0, 100, 10))
    assert next_counter(99, 100) == (False, 100)
    assert next_counter(100, 100) == (True, 0)


def _digits_frepo(steps=12, **kw):
    ds = load_dataset("digits")
    sp = make_split(ds, 600, 300, seed=0)
    x = Transform.fit(ds.x_train)(ds.x_train[sp.members])
    y = ds.y_train[sp.members]
    init = choose_init_indices(y, 2, 10, 0)
    cfg = DistillConfig(ipc=2, steps=steps, width=8, depth=2, batch_real=64, pool_size=3, max_online_updates=4,
                        **{"init": "real", **kw})  # starts from the members x[init]
    return FRePo(cfg, x, y, 10, x[init], y[init], log=lambda s: None)


def test_pool_follows_reset_rule_and_loss_decreases():
    fr = _digits_frepo(steps=40)
    counters = initial_counters(3, 4).tolist()
    resets = [0, 0, 0]
    losses = []
    for s in range(40):
        out = fr.step(s)
        k = int(out["model"])
        reset, counters[k] = next_counter(counters[k], 4)
        resets[k] += reset
        losses.append(out["loss"])
    assert fr.pool.counters.numpy().tolist() == counters
    assert fr.pool.resets.numpy().tolist() == resets and sum(resets) > 0
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


@pytest.mark.slow
def test_labels_take_their_own_learning_rate():
    # LAMB's trust ratio makes a step's length lr * ||p||, so after the first step each
    # tensor has moved by exactly its own rate (the cosine decay starts at the full rate)
    def moved(fr):
        x0, y0 = fr.x_syn.numpy(), fr.y_syn.numpy()
        fr.step(0)
        return (np.linalg.norm(fr.x_syn.numpy() - x0) / np.linalg.norm(x0),
                np.linalg.norm(fr.y_syn.numpy() - y0) / np.linalg.norm(y0))

    dx, dy = moved(_digits_frepo(lr=3e-4, label_lr=2e-3))
    assert dx == pytest.approx(3e-4, rel=1e-3) and dy == pytest.approx(2e-3, rel=1e-3)
    dx, dy = moved(_digits_frepo(lr=3e-4))  # unset: the images' rate
    assert dx == pytest.approx(3e-4, rel=1e-3) and dy == pytest.approx(3e-4, rel=1e-3)
    assert DistillConfig(init="noise").label_rate == DistillConfig(init="noise").image_lr
    with pytest.raises(UserError, match="label_lr"):
        DistillConfig(label_lr=0.0)


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path):
    full = _digits_frepo(steps=10)
    full.run(progress=False)
    part = _digits_frepo(steps=10)
    part.run(checkpoint=tmp_path / "ck.npz", progress=False, stop_after=6)
    part.save_checkpoint(tmp_path / "ck.npz")
    resumed = _digits_frepo(steps=10)
    resumed.run(checkpoint=tmp_path / "ck.npz", resume=True, progress=False)
    assert resumed.state.step == 10
    np.testing.assert_allclose(resumed.x_syn.numpy(), full.x_syn.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(resumed.y_syn.numpy(), full.y_syn.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_distill_cli_on_digits(tmp_path, capsys):
    out = tmp_path / "d"
    rc = main(["distill", "--dataset", "digits", "--ipc", "2", "--steps", "20", "--width", "16", "--batch-real", "128",
               "--pool-size", "2", "--init", "real", "--out", str(out), "--quiet", "--tensorboard"])
    assert rc == 0
    warned = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warned) == 1 and "init=real copies 2 members per class" in warned[0] and "exposes" in warned[0]
    record = out / "PRIVATE-do-not-release"
    assert list((record / "tensorboard").glob("events.out.tfevents.*"))
    meta = json.loads((record / "run.json").read_text())
    split = json.loads((record / "split.json").read_text())
    assert meta["complete"] and meta["steps_done"] == 20 and np.isfinite(meta["final_loss"])
    assert meta["split_hash"] == split["hash"]
    assert set(meta["init_member_indices"]) <= set(split["members"]) and len(meta["init_member_indices"]) == 20
    assert (meta["exposed_members"] == 20
            and "copied 20 members (init=real), which the release exposes" in meta["privacy_statement"])
    assert meta["image_lr"] == 3e-4
    with np.load(out / "distilled.npz") as z:
        assert z["x"].shape == (20, 8, 8, 1) and z["y"].shape == (20, 10) and z["images_uint8"].dtype == np.uint8
        assert list(z["labels"]) == sorted(z["labels"])
        assert "init_member_indices" not in z.files  # the copied members' indices stay in the private record
        public = json.loads(str(z["provenance"]))
    assert (public["exposed_members"] == 20
            and "copied 20 members (init=real), which the release exposes" in public["privacy_statement"])
    assert (out / "distilled.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc = main(["evaluate", "--distilled", str(out / "distilled.npz"), "--dataset", "digits", "--models", "1",
               "--train-steps", "300", "--width", "16", "--compare-width", "32", "--json", str(tmp_path / "e.json"),
               "--quiet"])
    assert rc == 0
    ev = json.loads((tmp_path / "e.json").read_text())
    wide = ev["at_width"]["32"]
    assert (wide["train_config"]["width"] == 32 and ev["train_config"]["width"] == 16
            and wide["test_accuracy_mean"] > 0.5)
    # 20 synthetic images teach a fresh model far beyond chance (10%) on the held-out test split
    assert ev["test_accuracy_mean"] > 0.5, ev["test_accuracy_mean"]
    assert len(ev["test_accuracy"]) == 1 and ev["train_steps"] == 300
    # the random-subset baseline alone: 2 members per class of the distillation's members, recorded by index
    rc = main(["evaluate", "--distilled", str(out / "distilled.npz"), "--dataset", "digits", "--models", "1",
               "--train-steps", "300", "--width", "16", "--only-subset", "--augment", "frepo-code", "--lr-final-ratio",
               "0.01", "--json", str(tmp_path / "s.json"), "--quiet"])
    assert rc == 0
    sub = json.loads((tmp_path / "s.json").read_text())
    assert "test_accuracy_mean" not in sub and "at_width" not in sub
    assert ev["train_config"]["augment"] == "dsa" and sub["random_subset"]["train_config"]["augment"] == "frepo-code"
    assert (ev["train_config"]["lr_final_ratio"] == 0.0
            and sub["random_subset"]["train_config"]["lr_final_ratio"] == 0.01)
    assert "members" not in sub["random_subset"]  # the members' indices stay in the private run record
    chosen = np.array(json.loads(Path(sub["random_subset"]["members_file"]).read_text())["members"])
    assert Path(sub["random_subset"]["members_file"]).parent == record
    from mi_defense.data.registry import load_dataset
    assert set(chosen) <= set(split["members"]) and len(set(chosen)) == 20 and sub["random_subset"]["n_train"] == 20
    assert np.bincount(load_dataset("digits").y_train[chosen], minlength=10).tolist() == [2] * 10
    assert sub["random_subset"]["test_accuracy_mean"] > 0.3  # 20 real digits: far above chance (10%)
    assert (f"random real subset (20 images): test accuracy {100 * sub['random_subset']['test_accuracy_mean']:.2f}"
            in capsys.readouterr().out)
    assert main(["evaluate", "--distilled", str(out / "distilled.npz"), "--dataset", "digits", "--only-subset",
                 "--compare-width", "32"]) == 2


def test_noise_starts_are_data_free_reproducible_and_smooth_where_asked():
    from mi_defense.distillation.api import noise_start

    white = noise_start(50, (28, 28, 1), 0.0, seed=3)
    np.testing.assert_array_equal(white, np.random.default_rng(3).standard_normal((50, 28, 28, 1)).astype(np.float32))
    smooth = noise_start(50, (28, 28, 1), 2.0, seed=3)
    np.testing.assert_array_equal(smooth, noise_start(50, (28, 28, 1), 2.0, seed=3))
    np.testing.assert_allclose(smooth.std(axis=(1, 2, 3)), 1.0, rtol=1e-5)  # unit variance per image

    def neighbour_corr(a):  # correlation of horizontally adjacent pixels
        return np.corrcoef(a[:, :, :-1].ravel(), a[:, :, 1:].ravel())[0, 1]
    assert abs(neighbour_corr(white)) < 0.05 and neighbour_corr(smooth) > 0.85
    assert noise_start(4, (12,), 2.0, seed=0).shape == (4, 12)  # tabular rows are not blurred


@pytest.mark.slow
def test_default_start_is_noise_and_copies_no_member(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["distill", "--dataset", "digits", "--ipc", "1", "--steps", "3", "--width", "8", "--pool-size", "2",
                 "--out", str(out), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err
    meta = json.loads((out / "PRIVATE-do-not-release" / "run.json").read_text())
    assert meta["config"]["init"] == "noise" and meta["config"]["smooth_sigma"] == 2.0 and meta["image_lr"] == 1e-2
    assert meta["init_member_indices"] == [] and meta["exposed_members"] == 0
    assert meta["privacy_statement"].endswith("the start copied no member")
    with np.load(out / "distilled.npz") as z:
        assert "init_member_indices" not in z.files


@pytest.mark.slow
def test_resume_without_a_checkpoint_says_it_starts_from_scratch(tmp_path, capsys):
    args = ["distill", "--dataset", "digits", "--ipc", "1", "--steps", "2", "--width", "8", "--pool-size", "2",
            "--quiet", "--out", str(tmp_path / "r"), "--resume"]
    assert main(args) == 0
    assert "--resume: no checkpoint in" in capsys.readouterr().out
    assert main(args) == 0  # now complete: nothing to resume, and said so
    assert "already complete; nothing to resume" in capsys.readouterr().out


@pytest.mark.slow
def test_mirrored_strategy_matches_single_device(tmp_path):
    """Two logical CPU devices: the same loss as one device (run in a fresh interpreter)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import numpy as np
        from mi_defense.tfenv import tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from tests.test_distill import _digits_frepo
        single = _digits_frepo(steps=3)
        mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        import tests.test_distill as t
        from mi_defense.distillation import frepo
        orig = frepo.FRePo.__init__
        def init(self, *a, **k):
            k["strategy"] = mirrored_strategy
            orig(self, *a, **k)
        frepo.FRePo.__init__ = init
        mirrored = _digits_frepo(steps=3)
        assert mirrored.strategy.num_replicas_in_sync == 2
        for s in range(3):
            a, b = single.step(s), mirrored.step(s)
            assert abs(a["loss"] - b["loss"]) < 1e-4 * max(1.0, abs(a["loss"])), (s, a, b)
        np.testing.assert_allclose(single.x_syn.numpy(), mirrored.x_syn.numpy(), rtol=1e-3, atol=1e-4)
        print("OK")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-3000:]


def test_failed_float32_cholesky_is_retried_in_float64_and_logged():
    logs = []
    fr = _digits_frepo(steps=3)
    fr.log = logs.append
    f64 = fr._float64_step

    def failing_f32(step):  # what a CPU Cholesky failure does
        raise tf.errors.InvalidArgumentError(None, None, "Cholesky decomposition was not successful")

    fr._auto = failing_f32
    before = fr.x_syn.numpy().copy()
    out = fr.step(0)
    assert fr.state.f64_retries == 1 and any("float64" in m for m in logs)
    assert np.isfinite(out["loss"]) and not np.array_equal(before, fr.x_syn.numpy())
    assert fr._float64_step is f64


@pytest.mark.slow
def test_non_finite_float32_step_is_retried_in_float64_inside_the_graph(monkeypatch):
    """A GPU's Cholesky gives NaN instead of raising: the float32 step must leave the state
    untouched and the same graph must run the step again in float64, with no host read."""
    import importlib

    frepo_module = importlib.import_module("mi_defense.distillation.frepo")

    real_loss = frepo_module.krr_loss

    def nan_in_float32(f_s, y_s, f_t, y_t, reg):  # as if the float32 kernel solve had failed
        loss = real_loss(f_s, y_s, f_t, y_t, reg)
        return loss * float("nan") if f_s.dtype == tf.float32 else loss

    monkeypatch.setattr(frepo_module, "krr_loss", nan_in_float32)
    logs = []
    fr, ref = _digits_frepo(steps=3), _digits_frepo(steps=3)
    fr.log = logs.append
    launched = fr._launch(0)
    assert bool(launched["retried"]) and fr.state.f64_retries == 0  # counted when read
    out = fr._collect(0, launched)
    assert fr.state.f64_retries == 1 and any("retried" in m for m in logs)
    expected = ref._float64_step(tf.constant(0, tf.int64))  # the same step, float64 only
    assert np.isfinite(out["loss"]) and abs(out["loss"] - float(expected["loss"])) < 1e-6
    np.testing.assert_array_equal(fr.x_syn.numpy(), ref.x_syn.numpy())  # one update, not two


def test_singular_kernel_raises_instead_of_training_on_nan():
    from mi_defense.distillation.frepo import NumericsError

    ds = load_dataset("digits")
    x = Transform.fit(ds.x_train)(ds.x_train[:300])
    y = ds.y_train[:300]
    init = choose_init_indices(y, 2, 10, 0)
    x0 = np.repeat(x[init][:1], len(init), axis=0)  # every synthetic image identical: K_ss has rank 1
    cfg = DistillConfig(ipc=2, steps=2, width=8, depth=2, batch_real=32, pool_size=1, reg=0.0)
    fr = FRePo(cfg, x, y, 10, x0, y[init], log=lambda s: None)
    with pytest.raises(NumericsError):
        fr.step(0)
    assert np.array_equal(fr.x_syn.numpy(), x0)  # nothing was updated
    assert np.all(np.isfinite(fr.y_syn.numpy()))


# ------------------------------------------------------------------ real pool
@pytest.mark.parametrize("kind", ["standardize", "zca"])
def test_real_pool_keeps_uint8_and_gives_the_transformed_batch(kind):
    from mi_defense.distillation.real_pool import RealPool

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 6, 6, 3), dtype=np.uint8)
    t = Transform.fit(x, kind)
    pool = RealPool(x, t)
    assert pool.compact and pool.x.dtype == tf.uint8 and pool.nbytes == x.size
    ids = np.array([3, 0, 41, 3, 17])
    got = pool.take(tf.constant(ids)).numpy()
    want = t(x[ids])
    if kind == "standardize":  # the same float32 operations: bit for bit
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    floats = RealPool(t(x))  # already in model space: kept as float32
    assert not floats.compact and floats.nbytes == 4 * x.size
    np.testing.assert_array_equal(floats.take(tf.constant(ids)).numpy(), want if kind == "standardize" else t(x)[ids])


@pytest.mark.slow
def test_frepo_on_uint8_pixels_equals_frepo_on_transformed_inputs():
    ds = load_dataset("digits")
    sp = make_split(ds, 300, 100, seed=0)
    t = Transform.fit(ds.x_train)
    raw, y = ds.x_train[sp.members], ds.y_train[sp.members]
    assert raw.dtype == np.uint8
    init = choose_init_indices(y, 2, 10, 0)
    cfg = DistillConfig(ipc=2, steps=4, width=8, depth=2, batch_real=32, pool_size=2, max_online_updates=3, init="real")
    a = FRePo(cfg, raw, y, 10, t(raw[init]), y[init], log=lambda s: None, transform=t)
    b = FRePo(cfg, t(raw), y, 10, t(raw[init]), y[init], log=lambda s: None)
    assert a.real.compact and not b.real.compact
    for s in range(4):
        a.step(s)
        b.step(s)
    # the compiled step may fuse the transform's float32 operations differently
    np.testing.assert_allclose(a.x_syn.numpy(), b.x_syn.numpy(), rtol=1e-3, atol=2e-3)
    np.testing.assert_allclose(a.y_syn.numpy(), b.y_syn.numpy(), rtol=1e-3, atol=2e-3)
    assert not np.allclose(a.x_syn.numpy(), t(raw[init]), atol=1e-3)  # the steps did move the set
