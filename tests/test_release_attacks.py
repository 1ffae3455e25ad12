"""Calibrated attacks on a released set (``attacks.release_lira``) on the digits data."""
import numpy as np
import pytest

import attacks
from attacks import AttackInputError, ReleaseInputs
from attacks.release_lira import calibrated, krr_loss, feature_map, centred_onehot
from mi_defense.data import load_dataset, universe_masks

N_UNIVERSE, IPC, M = 600, 10, 8
CALIBRATED = ["release_lira_pixel", "release_lira_random_feature", "release_lira_krr"]


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits", None)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds.x_train))
    x = ds.x_train.reshape(len(ds.x_train), -1).astype(np.float64)
    return x[order[:N_UNIVERSE]], ds.y_train[order[:N_UNIVERSE]], x[order[N_UNIVERSE:]], ds.y_train[order[N_UNIVERSE:]]


def copies_of(x, y, positions, seed):
    """An init=real style release: ``IPC`` images per class copied exactly from ``positions``."""
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.choice(positions[y[positions] == c], IPC, replace=False) for c in range(10)])
    return x[pick], centred_onehot(y[pick], 10), pick


def release_inputs(digits, target_x, target_y, membership, masks):
    xu, yu, _, _ = digits
    refs = [copies_of(xu, yu, np.flatnonzero(masks[:, j]), 100 + j) for j in range(masks.shape[1])]
    return ReleaseInputs(candidates={"pixel": xu}, synthetic={"pixel": target_x}, membership=membership, labels=yu,
                         num_classes=10, synthetic_targets=target_y, reference_synthetic=[r[0] for r in refs],
                         reference_targets=[r[1] for r in refs], reference_in=masks)


def setting(digits):
    xu, yu, _, _ = digits
    membership = np.arange(N_UNIVERSE) < N_UNIVERSE // 2
    masks = universe_masks(N_UNIVERSE, M, seed=3)
    return xu, yu, membership, masks


def test_krr_loss_known_answer_and_interpolation():
    # one released image with feature (1, 0): pred(x) = (x . s) / (|s|^2 (1 + reg)) * y_s
    f_s, y_s = np.array([[1.0, 0.0]]), np.array([[0.5, -0.5]])
    f_x, y_x = np.array([[2.0, 3.0], [0.0, 1.0]]), np.array([[0.5, -0.5], [0.5, -0.5]])
    got = krr_loss(f_x, y_x, f_s, y_s, reg=0.0)
    assert got == pytest.approx([0.5 * (0.5 ** 2 + 0.5 ** 2), 0.5 * (0.25 + 0.25)])
    # a candidate that is a released image, with the released label, has (almost) zero loss
    rng = np.random.default_rng(0)
    s = rng.random((20, 64))
    f = feature_map(s, scale=5.0)
    y = centred_onehot(np.arange(20) % 10, 10)
    assert krr_loss(f[:3], y[:3], f, y).max() < 1e-6


def test_calibrated_attacks_catch_a_release_that_copies_members(digits):
    xu, yu, membership, masks = setting(digits)
    tx, ty, pick = copies_of(xu, yu, np.flatnonzero(membership), 7)
    rel = release_inputs(digits, tx, ty, membership, masks)
    res = attacks.run(release_inputs=rel, attacks=CALIBRATED + ["release_krr", "release_pixel"], bootstrap=100)
    for name in CALIBRATED:
        assert res[name]["auc_ci"][0] > 0.55, (name, res[name]["auc"])
        assert res[name]["tpr_at_fpr"]["0.01"] > 0.2, name  # the copies stand out at low FPR
    # the copied members are exactly the ones found first
    s = attacks.scores_for("release_lira_pixel", release_inputs=rel)[0]
    assert set(np.argsort(-s)[:len(pick)]) == set(pick)


def test_calibrated_attacks_on_a_release_independent_of_the_members_are_at_chance(digits):
    xu, yu, membership, masks = setting(digits)
    _, _, xo, yo = digits  # images outside the universe: nothing of the members is in the release
    tx, ty, _ = copies_of(xo, yo, np.arange(len(xo)), 7)
    rel = release_inputs(digits, tx, ty, membership, masks)
    res = attacks.run(release_inputs=rel, attacks=CALIBRATED + ["release_krr"], bootstrap=200)
    for name, r in res.items():
        assert r["auc_ci"][0] < 0.5 < r["auc_ci"][1], (name, r["auc"], r["auc_ci"])


def test_the_target_release_among_the_references_would_fake_a_leak(digits):
    """The calibration must use the reference releases only: with the target release added
    as one more reference (IN for its members), an independent release looks leaky."""
    xu, yu, membership, masks = setting(digits)
    _, _, xo, yo = digits
    tx, ty, _ = copies_of(xo, yo, np.arange(len(xo)), 7)
    rel = release_inputs(digits, tx, ty, membership, masks)
    honest = attacks.run(release_inputs=rel, attacks=["release_lira_krr"], bootstrap=0)["release_lira_krr"]["auc"]
    leaked = ReleaseInputs(candidates=rel.candidates, synthetic=rel.synthetic, membership=membership, labels=yu,
                           num_classes=10, synthetic_targets=ty, reference_synthetic=[*rel.reference_synthetic, tx],
                           reference_targets=[*rel.reference_targets, ty], reference_in=np.c_[masks, membership])
    fake = attacks.run(release_inputs=leaked, attacks=["release_lira_krr"], bootstrap=0)["release_lira_krr"]["auc"]
    assert abs(honest - 0.5) < 0.06 and fake > honest + 0.1, (honest, fake)


def test_calibration_is_lira_on_the_log_statistic():
    # IN releases put the statistic near e^0, OUT near e^2: a target value of 1 is IN-like
    rng = np.random.default_rng(0)
    ref_in = np.zeros((200, 8), bool)
    ref_in[:, :4] = True
    refs = np.exp(np.where(ref_in, 0.0, 2.0) + 0.1 * rng.standard_normal((200, 8)))
    s = calibrated(np.r_[np.ones(100), np.full(100, np.exp(2.0))], refs, ref_in)
    assert (s[:100] > 0).all() and (s[100:] < 0).all()


def test_release_inputs_refuse_mismatched_references(digits):
    xu, yu, membership, masks = setting(digits)
    with pytest.raises(AttackInputError, match="reference_in"):
        ReleaseInputs(candidates={"pixel": xu}, synthetic={"pixel": xu[:5]}, membership=membership, labels=yu,
                      synthetic_targets=centred_onehot(yu[:5], 10), reference_synthetic=[xu[:5]],
                      reference_targets=[centred_onehot(yu[:5], 10)], reference_in=masks)
    rel = ReleaseInputs(candidates={"pixel": xu}, synthetic={"pixel": xu[:5]}, membership=membership)
    assert "release_lira_pixel" not in attacks.available(release_inputs=rel)
    with pytest.raises(AttackInputError, match="needs ReleaseInputs .* candidate labels"):
        attacks.scores_for("release_lira_pixel", release_inputs=rel)


def test_the_audit_calibrates_with_the_reference_releases_only(digits):
    """``audit.inputs.release_inputs``: the reference releases are the reference runs' own,
    never the target's, and an independent target release stays at chance."""
    from mi_defense.auditing.inputs import release_inputs
    from mi_defense.data import Transform

    xu, yu, membership, masks = setting(digits)
    _, _, xo, yo = digits
    img = lambda a: a.reshape(len(a), 8, 8, 1).astype(np.uint8)
    tf_ = Transform.fit(img(xu))
    run = lambda x, y: {"released_x": tf_(img(x)), "released_y": y}
    tx, ty, _ = copies_of(xo, yo, np.arange(len(xo)), 7)
    refs = [run(*copies_of(xu, yu, np.flatnonzero(masks[:, j]), 100 + j)[:2]) for j in range(M)]
    rel = release_inputs(tf_, tf_(img(xu)), yu, 10, membership, masks, run(tx, ty), refs, {})
    assert len(rel.reference_synthetic) == M and rel.reference_in.shape == (N_UNIVERSE, M)
    assert not any(np.allclose(r, rel.synthetic["pixel"], atol=1e-3) for r in rel.reference_synthetic)
    res = attacks.run(release_inputs=rel, attacks=CALIBRATED, bootstrap=200)
    for name, r in res.items():
        assert r["auc_ci"][0] < 0.5 < r["auc_ci"][1], (name, r["auc"])
