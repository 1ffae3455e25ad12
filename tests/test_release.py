"""A release holds only what its guarantee covers; the run record stays private.

The strongest check is a comparison: two DP runs on different members (drawn with secret
split seeds) must publish byte-identical provenance and normalisation, since nothing but
the synthetic set may depend on the private data or on a secret seed.
"""
import json

import numpy as np
import pytest

from mi_defense.cli import main
from mi_defense.distillation.artifact import PUBLIC_ARRAYS, PUBLIC_PROVENANCE, PUBLIC_SETTINGS
from mi_defense.distillation.record import PRIVATE_DIR

TINY = ["--ipc", "1", "--steps", "4", "--width", "4", "--depth", "1", "--batch-real", "64", "--pool-size", "2",
        "--quiet"]


def _public(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays["provenance"]))


def _check_allow_list(arrays, provenance):
    """Fails on any array, provenance key or setting outside the public lists."""
    extra = [k for k in arrays if k not in PUBLIC_ARRAYS and not k.startswith("transform_")]
    assert not extra, f"release arrays outside the allow-list: {extra}"
    assert set(provenance) <= set(PUBLIC_PROVENANCE), set(provenance) - set(PUBLIC_PROVENANCE)
    assert set(provenance["settings"]) <= set(PUBLIC_SETTINGS), set(provenance["settings"]) - set(PUBLIC_SETTINGS)


@pytest.mark.slow
def test_dp_cli_release_holds_nothing_computed_from_the_members_or_the_seeds(tmp_path):
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["distill", "--dataset", "digits", "--epsilon", "4", "--out", str(out), *TINY]) == 0
        arrays, prov = _public(out / "distilled.npz")
        _check_allow_list(arrays, prov)
        record = json.loads((out / PRIVATE_DIR / "run.json").read_text())
        runs.append((arrays, prov, record, (out / "distilled.npz").read_bytes()))
        assert "must not be released" in (out / PRIVATE_DIR / "README.txt").read_text().lower() or \
            "do not release" in (out / PRIVATE_DIR / "README.txt").read_text().lower()
    (a_arr, a_prov, a_rec, a_bytes), (b_arr, b_prov, b_rec, _) = runs
    # the two runs distilled different members with different secret seeds ...
    assert a_rec["split_hash"] != b_rec["split_hash"] and a_rec["split_seed"] != b_rec["split_seed"]
    assert a_rec["seed"] != b_rec["seed"] and a_rec["n_members"] == b_rec["n_members"]
    # ... yet everything published besides the synthetic set is identical
    assert a_prov == b_prov
    for k in a_arr:
        if k not in ("x", "y", "images_uint8", "provenance"):
            np.testing.assert_array_equal(a_arr[k], b_arr[k], err_msg=k)
    assert not np.array_equal(a_arr["x"], b_arr["x"])
    # no private value appears anywhere in the file (uncompressed npz; numpy stores strings as UTF-32)
    def in_file(text):
        return any(text.encode(enc) in a_bytes for enc in ("utf-8", "utf-32-le"))
    assert in_file(a_prov["privacy_statement"][:40])  # the search finds what is there
    for secret in (a_rec["split_hash"], a_rec["dataset_fingerprint"], a_rec["run_hash"], str(a_rec["seed"]),
                   str(a_rec["split_seed"])):
        assert not in_file(secret), secret
    # N is declared public in the statement, as the privacy record says
    assert a_prov["privacy"]["n_private_is_public"] and f"N={a_rec['n_members']}" in a_prov["privacy_statement"]
    assert "seed" not in a_prov["settings"] and a_prov["dataset"] == "digits"


@pytest.mark.slow
def test_dp_api_release_holds_nothing_computed_from_the_members(tmp_path):
    import mi_defense
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images[..., None] * 255 / 16).round().astype(np.uint8)
    y = d.target
    settings = dict(ipc=1, steps=3, width=4, depth=1, batch_real=64, pool_size=2, epsilon=4.0)
    a = mi_defense.distill(x[:600], y[:600], **settings)
    b = mi_defense.distill(x[600:1200], y[600:1200], **settings)  # disjoint members of the same size
    assert (a.private["dataset_fingerprint"] != b.private["dataset_fingerprint"]
            and a.private["seed"] != b.private["seed"])
    assert a.provenance == b.provenance and set(a.provenance) <= set(PUBLIC_PROVENANCE)
    arrays, prov = _public(a.save(tmp_path / "a.npz"))
    _check_allow_list(arrays, prov)
    assert "dataset" not in prov  # the user's own data is not named


@pytest.mark.slow
def test_secret_seeds_resume_and_a_delta_at_or_above_one_over_n_is_refused(tmp_path, capsys, monkeypatch):
    from mi_defense.api import distill_dataset
    from mi_defense.distillation import api

    out = tmp_path / "d"
    real = api.distil_members

    def killed(*a, **k):
        raise KeyboardInterrupt  # the process dies in the first step, before any checkpoint

    monkeypatch.setattr(api, "distil_members", killed)
    with pytest.raises(KeyboardInterrupt):
        distill_dataset("digits", out=str(out), epsilon=4.0, ipc=1, steps=4, width=4, depth=1, batch_real=64,
                        pool_size=2)
    monkeypatch.setattr(api, "distil_members", real)
    first = json.loads((out / PRIVATE_DIR / "run.json").read_text())
    assert not first["complete"] and not (out / "distilled.npz").exists()  # an unfinished run publishes nothing
    assert first["seed"] != 0 and first["split_seed"] != 0
    assert main(["distill", "--dataset", "digits", "--epsilon", "4", "--resume", "--out", str(out), *TINY]) == 0
    done = json.loads((out / PRIVATE_DIR / "run.json").read_text())
    assert done["complete"] and (done["seed"], done["split_hash"]) == (first["seed"], first["split_hash"])
    capsys.readouterr()
    assert main(["distill", "--dataset", "digits", "--epsilon", "1", "--delta", "0.01", "--out", str(tmp_path / "e"),
                 *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "delta=0.01 must be below 1/n" in err and "Traceback" not in err
    assert not (tmp_path / "e").exists()  # refused before anything was written


def test_delta_check_is_strict_below_one_over_n():
    from mi_defense.accounting import check_delta, dp_delta
    from mi_defense.errors import UserError

    assert check_delta(0.0009, 1000) == 0.0009
    for bad in (0.001, 0.5, 0.0, -1e-5, float("nan")):
        with pytest.raises(UserError, match="must be below 1/n"):
            check_delta(bad, 1000)
    for n in (10, 1000, 54000, 10 ** 7):
        assert dp_delta(n) < 1.0 / n


def test_an_older_release_with_private_fields_warns_and_is_rewritten_without_them(tmp_path):
    import mi_defense
    from mi_defense.distillation.artifact import private_fields
    from mi_defense.io import write_npz

    out = tmp_path / "d"
    assert main(["distill", "--dataset", "digits", "--out", str(out), *TINY]) == 0
    arrays, prov = _public(out / "distilled.npz")
    old = {**prov, "seed": 0, "split_hash": "ab" * 32, "n_members": 1437, "settings": {**prov["settings"], "seed": 0}}
    write_npz(tmp_path / "old.npz", **{**arrays, "provenance": np.array(json.dumps(old)),
                                       "init_member_indices": np.arange(3, dtype=np.int64)})
    with pytest.warns(UserWarning, match="carries private fields"):
        loaded = mi_defense.load_distilled(tmp_path / "old.npz")
    assert sorted(private_fields(loaded.provenance)) == ["n_members", "seed", "settings.seed", "split_hash"]
    arrays2, prov2 = _public(loaded.save(tmp_path / "clean.npz"))
    _check_allow_list(arrays2, prov2)
    assert prov2 == prov
    # the first format: settings under "config" (with the seed), no "format" key
    first = {**{k: v for k, v in old.items() if k not in ("format", "settings")}, "config": old["settings"]}
    write_npz(tmp_path / "first.npz", **{**arrays, "provenance": np.array(json.dumps(first))})
    with pytest.warns(UserWarning, match="carries private fields"):
        loaded = mi_defense.load_distilled(tmp_path / "first.npz")
    arrays3, prov3 = _public(loaded.save(tmp_path / "clean-first.npz"))
    _check_allow_list(arrays3, prov3)
    assert prov3 == prov
