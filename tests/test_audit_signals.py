"""The audit's signals file re-scores every attack without training: the numbers it gives
equal the audit's own, for attacks on the model and on a released set."""
import numpy as np
import pytest

from mi_defense.auditing import run_audit
from mi_defense.auditing import signals as sig
from mi_defense.defenses import REGISTRY, Defense, DefenseResult
from mi_defense.errors import UserError
from mi_defense.training.evaluate import accuracy
from mi_defense.training.loop import train_model
from mi_defense.training.targets import targets_for
from tests.test_audit import tiny, tiny_config  # noqa: F401  (the fixture)


class CopyRelease(Defense):
    """Releases 20 of its members unchanged and trains the model on them: a leaky release."""

    name = "copy-release"
    releases = True

    def fit(self, x, y, seed):
        pos = np.random.default_rng(seed).choice(len(x), 20, replace=False)
        yt = targets_for(y[pos], self.ctx.num_classes)
        model = train_model(x[pos], yt, self.ctx.num_classes, self.train_cfg(seed, 100))
        return DefenseResult(model, {"x": x[pos], "y": yt, "labels": y[pos], "init_positions": pos},
                             {"train_accuracy": accuracy(model, x, y), "privacy_statement": "copies members"})


@pytest.fixture(autouse=True)
def copy_release():
    REGISTRY["copy-release"] = CopyRelease
    yield
    REGISTRY.pop("copy-release", None)


@pytest.mark.slow
def test_signals_rescore_the_audits_attacks_on_model_and_release(tiny, tmp_path):  # noqa: F811
    cfg = tiny_config(tiny, defenses=("none", "copy-release"), attacks=())
    res = run_audit(cfg, tmp_path / "a", progress=False, log=lambda s: None)
    s = sig.load(tmp_path / "a" / sig.FILE)
    assert set(s.defenses) == {"none", "copy-release"} and s.reference_in.shape == (160, 4)
    for entry in res["defenses"]:
        d = s.defenses[entry["key"]]
        assert d.test_accuracy[0] == pytest.approx(entry["test_accuracy"])
        names = ["threshold_loss", "lira_online", "lira_offline_fixed", "rmia"]
        if entry["key"] == "copy-release":
            assert set(d.release) == {"pixel", "random_feature", "krr", "model_feature"}
            names += ["release_pixel", "release_feature", "release_krr", "release_lira_pixel",
                      "release_lira_model_feature"]
        again = sig.rescore(s, entry["key"], names, bootstrap=0)
        for n in names:
            assert again[n]["auc"] == pytest.approx(entry["attacks"][n]["auc"], abs=1e-6), n
    # the copied members are found by the release attack on both paths
    assert again["release_pixel"]["tpr_at_fpr"]["0.001"] > 0.05
    assert s.scoring == {"seed": 0, "fprs": list(cfg.fprs), "augmented_queries": "none"}
    with pytest.raises(UserError, match="release_pixel cannot be scored from these signals"):
        sig.rescore(s, "none", ["release_pixel"])  # the undefended model releases no set


def test_damaged_or_missing_signals_file_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        sig.load(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not an audit's signals file"):
        sig.load(tmp_path / "bad.npz")
