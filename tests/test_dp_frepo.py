"""DP-FRePo: the closed-form per-example gradients, the clipping bound, the accountant, and
equality with FRePo when there is no noise and no clipping."""
import dataclasses

import numpy as np
import pytest

from mi_defense.config import DistillConfig
from mi_defense.distillation.dp import DPPlan, private_gradients
from mi_defense.distillation.dp_krr import CLIP_MARGIN, clipped_gradient_sum, per_example_sq_norms, per_example_terms
from mi_defense.distillation.krr import krr_loss, label_margin_loss
from mi_defense.errors import UserError
from mi_defense.tfenv import tf
from mi_defense.training.targets import centred_onehot


def _problem(seed=0, n=7, d=5, b=6, c=3):
    rng = np.random.default_rng(seed)
    return [tf.constant(rng.standard_normal(s)) for s in ((n, d), (n, c), (b, d), (b, c))]


def _autodiff_per_example(f_s, y_s, f_t, y_t, reg):
    out = []
    for i in range(f_t.shape[0]):
        with tf.GradientTape() as tape:
            tape.watch([f_s, y_s])
            loss = krr_loss(f_s, y_s, f_t[i:i + 1], y_t[i:i + 1], reg)
        out.append([g.numpy() for g in tape.gradient(loss, [f_s, y_s])])
    return out


@pytest.mark.parametrize("reg", [1e-6, 0.3])
def test_closed_form_norms_and_clipped_sum_match_autodiff(reg):
    f_s, y_s, f_t, y_t = _problem()
    per = _autodiff_per_example(f_s, y_s, f_t, y_t, reg)
    norms = np.array([np.sqrt((gf ** 2).sum() + (gy ** 2).sum()) for gf, gy in per])
    got = np.sqrt(per_example_sq_norms(per_example_terms(f_s, y_s, f_t, y_t, reg)).numpy())
    np.testing.assert_allclose(got, norms, rtol=1e-8)
    clip = float(np.median(norms))  # some examples clipped, some not
    g_f, g_y, _ = clipped_gradient_sum(f_s, y_s, f_t, y_t, reg, clip)
    c = np.minimum(1.0, clip * (1 - CLIP_MARGIN) / norms)
    np.testing.assert_allclose(g_f.numpy(), sum(ci * gf for ci, (gf, _) in zip(c, per)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g_y.numpy(), sum(ci * gy for ci, (_, gy) in zip(c, per)), rtol=1e-6, atol=1e-6)


def test_changing_one_example_moves_the_sum_by_at_most_its_share():
    f_s, y_s, f_t, y_t = _problem(1, b=12)
    clip = 0.05
    base = clipped_gradient_sum(f_s, y_s, f_t, y_t, 1e-6, clip)
    rng = np.random.default_rng(2)
    for trial in range(5):
        ft2, yt2 = f_t.numpy().copy(), y_t.numpy().copy()
        i = trial % 12
        ft2[i] = 50 * rng.standard_normal(ft2.shape[1])  # an outlier
        yt2[i] = rng.standard_normal(yt2.shape[1])
        other = clipped_gradient_sum(f_s, y_s, tf.constant(ft2), tf.constant(yt2), 1e-6, clip)
        moved = np.sqrt(((base[0] - other[0]).numpy() ** 2).sum() + ((base[1] - other[1]).numpy() ** 2).sum())
        assert moved <= 2 * clip  # replace one = remove one + add one
        removed = clipped_gradient_sum(f_s, y_s, tf.constant(np.delete(ft2, i, 0)), tf.constant(np.delete(yt2, i, 0)),
                                       1e-6, clip)
        gone = np.sqrt(((other[0] - removed[0]).numpy() ** 2).sum() + ((other[1] - removed[1]).numpy() ** 2).sum())
        assert gone <= clip  # add/remove: at most C
        assert gone > 0.5 * clip  # and the outlier was clipped to C, not dropped


def test_a_non_finite_example_contributes_nothing():
    f_s, y_s, f_t, y_t = _problem(3)
    ft = f_t.numpy().copy()
    ft[2] = np.nan
    g_f, g_y, norms = clipped_gradient_sum(f_s, y_s, tf.constant(ft), y_t, 1e-6, 1.0)
    keep = np.delete(np.arange(6), 2)
    ref = clipped_gradient_sum(f_s, y_s, tf.constant(ft[keep]), tf.gather(y_t, keep), 1e-6, 1.0)
    np.testing.assert_allclose(g_f.numpy(), ref[0].numpy(), atol=1e-12)
    np.testing.assert_allclose(g_y.numpy(), ref[1].numpy(), atol=1e-12)


def test_plan_reaches_the_requested_epsilon():
    from mi_defense.accounting import epsilon_for

    cfg = DistillConfig(ipc=1, steps=500, batch_real=64, init="noise", epsilon=2.0)
    plan = DPPlan.for_config(cfg, 3000)
    assert plan.sampling_rate == pytest.approx(64 / 3000)
    assert plan.delta == 1e-5 and plan.epsilon <= 2.0
    assert epsilon_for(plan.noise_multiplier * 0.98, plan.sampling_rate, 500, plan.delta) > 2.0
    assert "epsilon=2" in plan.statement() and plan.to_json()["noise_multiplier"] == plan.noise_multiplier


@pytest.mark.parametrize("bad, msg", [(dict(init="real"), "copies no member"),
                                      (dict(init="noise", strategy="mirrored"), "one device"),
                                      (dict(init="noise", epsilon=-1.0), "epsilon"),
                                      (dict(init="noise", delta=1.5), "delta")])
def test_bad_dp_settings_are_one_line_errors(bad, msg):
    with pytest.raises(UserError, match=msg):
        DistillConfig(**{"epsilon": 1.0, **bad})


@pytest.mark.parametrize("space", ["readout", "features"])
def test_no_noise_and_no_clipping_equals_frepo_gradient(space):
    """With sigma = 0, C = infinity and q = 1 the private gradient is FRePo's (full batch),
    whichever space clips."""
    from mi_defense.distillation.frepo import FRePo

    rng = np.random.default_rng(0)
    n, ipc, k = 40, 2, 3
    x = rng.standard_normal((n, 8, 8, 1)).astype(np.float32)
    y = np.arange(n) % k
    cfg = DistillConfig(ipc=ipc, steps=3, width=8, depth=2, batch_real=n, pool_size=2, max_online_updates=2,
                        init="noise", epsilon=1.0, reg=1e-3)
    x0 = rng.standard_normal((ipc * k, 8, 8, 1)).astype(np.float32)
    y0 = np.repeat(np.arange(k), ipc)
    fr = FRePo(cfg, x, y, k, x0, y0, log=lambda s: None)
    plan = dataclasses.replace(fr.dp, noise_multiplier=0.0, clip=1e30, sampling_rate=1.0, clip_space=space)
    grads, finite = private_gradients(fr, plan, fr.dp_key, tf.constant(0, tf.int64))
    assert bool(finite)
    with tf.GradientTape() as tape:
        f_t = fr.model.features(tf.constant(x), training=False)
        f_s = fr.model.features(fr.x_syn, training=False)
        loss = krr_loss(tf.cast(f_s, tf.float64), tf.cast(fr.y_syn, tf.float64), tf.cast(f_t, tf.float64),
                        tf.cast(centred_onehot(tf.constant(y), k), tf.float64), cfg.reg)
        loss = tf.cast(loss, tf.float32) + label_margin_loss(fr.y_syn, k)
    ref = tape.gradient(loss, fr.learnable)
    for g, r in zip(grads, ref):
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=2e-3, atol=1e-6)


@pytest.mark.slow
def test_distill_cli_with_epsilon_writes_a_private_release(tmp_path):
    import json

    from mi_defense.cli import main

    out = tmp_path / "d"
    rc = main(["distill", "--dataset", "digits", "--ipc", "2", "--steps", "20", "--width", "16", "--batch-real", "128",
               "--pool-size", "2", "--epsilon", "4", "--out", str(out), "--quiet"])
    assert rc == 0
    meta = json.loads((out / "PRIVATE-do-not-release" / "run.json").read_text())
    priv = meta["privacy"]
    assert meta["config"]["init"] == "smooth-noise" and meta["image_lr"] == 1e-2  # DP-FRePo's defaults at quick
    assert meta["init_member_indices"] == [] and meta["loss_history"] == [] and meta["final_loss"] is None
    assert (priv["epsilon"] <= 4 and priv["steps"] == 20
            and priv["sampling_rate"] == pytest.approx(128 / meta["n_members"]))
    assert "differential privacy" in meta["privacy_statement"]
    with np.load(out / "distilled.npz") as z:
        keys = set(z.files)
        assert np.all(z["transform_mean"] == 0.5) and np.all(z["transform_std"] == 0.5)  # not fitted to the members
        assert "dp_key" not in keys and not (out / "PRIVATE-do-not-release" / "checkpoint.npz").exists()
    from mi_defense.distillation.artifact import load_distilled

    assert load_distilled(out / "distilled.npz").provenance["privacy"]["noise_multiplier"] == priv["noise_multiplier"]
    assert main(["distill", "--dataset", "digits", "--epsilon", "1", "--init", "real", "--out",
                 str(tmp_path / "e")]) == 2


@pytest.mark.slow
def test_private_run_resumes_with_its_secret_seeds(tmp_path):
    from mi_defense.distillation.frepo import FRePo

    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 8, 8, 1)).astype(np.float32)
    y = np.arange(60) % 3
    x0 = rng.standard_normal((6, 8, 8, 1)).astype(np.float32)
    cfg = DistillConfig(ipc=2, steps=6, width=8, depth=2, batch_real=20, pool_size=2, max_online_updates=3,
                        init="noise", epsilon=5.0)
    make = lambda: FRePo(cfg, x, y, 3, x0, np.repeat(np.arange(3), 2), log=lambda s: None)  # noqa: E731
    a, b = make(), make()
    assert not np.array_equal(a.dp_key.numpy(), b.dp_key.numpy())  # fresh secret seeds per run
    a.run(checkpoint=tmp_path / "ck.npz", progress=False, stop_after=3)
    a.save_checkpoint(tmp_path / "ck.npz")
    a.run(progress=False)
    b.run(checkpoint=tmp_path / "ck.npz", resume=True, progress=False)
    assert b.state.step == 6 and b.state.history == []
    np.testing.assert_allclose(b.x_syn.numpy(), a.x_syn.numpy(), rtol=1e-5, atol=1e-6)


def test_dp_runs_default_to_a_larger_batch_fewer_steps_and_smoothed_noise_unless_told_otherwise():
    from mi_defense.config import DISTILL_PRESETS, resolve_distill_config
    from mi_defense.errors import UserError

    quick = DISTILL_PRESETS["quick"]
    plain = resolve_distill_config("quick", "test")
    assert (plain.batch_real, plain.steps) == (quick.batch_real, quick.steps) == (256, 2000)
    dp = resolve_distill_config("quick", "test", epsilon=1.0)
    assert (dp.batch_real, dp.steps, dp.width, dp.init) == (1024, 500, quick.width, "smooth-noise")
    assert plain.init == "noise" and resolve_distill_config("quick", "test", epsilon=1.0, init="noise").init == "noise"
    # a flag beats the DP default
    told = resolve_distill_config("quick", "test", epsilon=1.0, batch_real=256, steps=None)
    assert (told.batch_real, told.steps) == (256, 500)
    paper = resolve_distill_config("paper", "test", epsilon=1.0)
    # unmeasured under DP: the paper's setting stands
    assert (paper.batch_real, paper.steps, paper.init) == (1024, 20000, "noise")
    with pytest.raises(UserError, match="unknown preset 'fast'"):
        resolve_distill_config("fast", "test")
