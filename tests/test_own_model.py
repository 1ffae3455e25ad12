"""Your own model (issue 41): ``--model file.py:build`` / ``audit(model=...)``, ``audit(x, y)`` on
arrays, ``audit_model`` on a trained model; the examples of docs/reference/python-api.md run
here (on smaller sizes), and bad models are one-line errors."""
import json
import os
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

import mi_defense
from mi_defense.cli import main
from mi_defense.config import DefenseSpec, TrainConfig
from mi_defense.defenses import DefenseContext, make_defense
from mi_defense.defenses.own_model import load_builder
from mi_defense.errors import UserError
from mi_defense.tfenv import tf
from tests.conftest import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reference" / "python-api.md"
LAYERS = ["Conv2D", "GroupNormalization", "MaxPooling2D", "Flatten", "Dense", "Dense"]
# Shrinks the CLI example to test size: appended flags override the example's.
SMALL_TOML = ("[train]\nsteps = 60\nwarmup = 10\n[distill]\nsteps = 4\npool_size = 2\nbatch_real = 64\n"
              "[real_recipe]\nepochs = 20\n")
SMALL_CLI = "--members 100 --nonmembers 100 --references 2 --real-steps 20 --bootstrap 10 --config small.toml --quiet"


def block(tag: str, lang: str = "python") -> str:
    m = re.search(rf"<!-- tested: {tag} -->\n```{lang}\n(.*?)```", DOC.read_text(), re.S)
    assert m, f"no {lang} block tagged {tag} in {DOC}"
    return m.group(1)


def smaller(code: str, swaps: dict) -> str:
    """The example with its sizes swapped for test sizes (each swapped text must be in it)."""
    for old, new in swaps.items():
        assert old in code, f"the example no longer holds {old!r}"
        code = code.replace(old, new)
    return code


def run_example(code: str, name: str) -> dict:
    scope = {"__name__": name}
    exec(compile(code, name, "exec"), scope)
    return scope


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A folder holding the docs' my_model.py, as the working directory and on sys.path."""
    (tmp_path / "my_model.py").write_text(block("own-model-file"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_model", None)


def _bad_models(path: Path) -> None:
    path.write_text(
        "import tensorflow as tf\nNOT_CALLABLE = 3\n\n\n"
        "def text(input_shape, num_classes, seed):\n    return 'a model'\n\n\n"
        "def wide(input_shape, num_classes, seed):\n    return tf.keras.Sequential([tf.keras.Input(input_shape), "
        "tf.keras.layers.Flatten(), tf.keras.layers.Dense(num_classes + 2)])\n\n\n"
        "def batchnorm(input_shape, num_classes, seed):\n    return tf.keras.Sequential([tf.keras.Input(input_shape), "
        "tf.keras.layers.Conv2D(4, 3), tf.keras.layers.BatchNormalization(name='bn1'), tf.keras.layers.Flatten(), "
        "tf.keras.layers.Dense(num_classes)])\n")


def test_model_names_that_cannot_be_loaded_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _bad_models(tmp_path / "bad.py")
    for spec, msg in (("nofile.py:build", "no such file nofile.py"),
                      ("bad.py:missing", "bad.py has no attribute 'missing'"),
                      ("bad.py:NOT_CALLABLE", "NOT_CALLABLE is not callable"),
                      ("no_such_module_41:build", "no module named"), ("build", "give path/to/file.py:FUNCTION")):
        with pytest.raises(UserError, match=msg) as exc:
            load_builder(spec)
        assert "\n" not in str(exc.value)
    assert callable(load_builder("bad.py:wide")) and load_builder("json:dumps") is json.dumps


def test_bad_builds_are_one_line_errors_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _bad_models(tmp_path / "bad.py")
    ctx = dict(num_classes=10, input_shape=(8, 8, 1), train=TrainConfig(width=8, depth=2))
    with pytest.raises(UserError, match=r"returned a str, not a tf.keras.Model"):
        DefenseContext(**ctx, build_model="bad.py:text")
    with pytest.raises(UserError, match=r"output has shape \(1, 12\), expected \(batch, 10\)"):
        DefenseContext(**ctx, build_model=load_builder("bad.py:wide"))
    good = DefenseContext(**ctx, build_model="bad.py:batchnorm")  # fine for every defense but DP-SGD
    make_defense(DefenseSpec.parse("none"), good)
    with pytest.raises(UserError, match=r"layer 'bn1' \(BatchNormalization\).*GroupNormalization or "
                                        r"LayerNormalization"):
        make_defense(DefenseSpec.parse("dpsgd:eps=8"), good)
    for spec, msg in (("bad.py:batchnorm", "dpsgd cannot train model bad.py:batchnorm"),
                      ("bad.py:wide", "output has shape"), ("missing.py:build", "no such file")):
        assert main(["audit", "--model", spec, "--defense", "none", "--defense", "dpsgd:eps=8", "--out", "o",
                     "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_the_package_records_its_own_architecture_and_the_users(here):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 8, 8, 1)).astype(np.float32), np.arange(40) % 4
    mine = DefenseContext(4, (8, 8, 1), TrainConfig(width=8, depth=2, steps=5), build_model="my_model.py:build")
    for ctx, source in ((DefenseContext(4, (8, 8, 1), TrainConfig(width=8, depth=2, steps=5)), "mi_defense ConvNet"),
                        (mine, "my_model.py:build")):
        meta = make_defense(DefenseSpec.parse("subset:n=20"), ctx).fit(x, y, seed=1).metadata
        assert meta["model"]["source"] == source and meta["model"]["parameters"] > 0
    assert (meta["model"]["layers"] == LAYERS
            and "model my_model.py:build (Conv2D, GroupNormalization" in meta["recipe"]["description"])


def mlp(input_shape, num_classes, seed):
    return tf.keras.Sequential([tf.keras.Input(input_shape), tf.keras.layers.Dense(16, activation="relu"),
                                tf.keras.layers.LayerNormalization(), tf.keras.layers.Dense(num_classes)])


def test_dpsgd_trains_a_users_model_on_feature_vectors_inside_the_dp_keras_model():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 6)).astype(np.float32), np.arange(60) % 3
    ctx = DefenseContext(3, (6,), TrainConfig(width=16, depth=1), real_steps=3, build_model=mlp)
    res = make_defense(DefenseSpec.parse("dpsgd:eps=4,batch=20"), ctx).fit(x, y, seed=0)
    assert type(res.model).__name__ == "DPModel" and res.model.output_shape == (None, 3)  # tensorflow-privacy's class
    assert res.metadata["model"] == {"source": f"{__name__}:mlp", "layers": ["Dense", "LayerNormalization", "Dense"],
                                     "parameters": 6 * 16 + 16 + 32 + 16 * 3 + 3}
    assert res.metadata["epsilon"] <= 4 and res.metadata["recipe"]["description"].startswith("DP-SGD: your model")


def test_audit_model_refuses_what_it_cannot_audit(here):
    from my_model import build

    x, y = np.zeros((20, 8, 8, 1), np.float32), np.arange(20) % 10
    model = build((8, 8, 1), 10, 0)
    with pytest.raises(UserError, match="trained tf.keras.Model"):
        mi_defense.audit_model(object(), members=(x, y), nonmembers=(x, y))
    with pytest.raises(UserError, match="even number"):
        mi_defense.audit_model(model, members=(x, y), nonmembers=(x, y), train=lambda m, a, b, s: m, references=3)
    with pytest.raises(UserError, match=r"lira_online cannot run here \(no reference runs without train\)"):
        mi_defense.audit_model(model, members=(x, y), nonmembers=(x, y), attacks=["lira_online"])
    with pytest.raises(UserError, match="members must be a pair"):
        mi_defense.audit_model(model, members=x, nonmembers=(x, y))


@pytest.mark.slow
def test_cli_example_audits_none_dpsgd_and_frepo_on_the_users_model_and_records_it(here, capsys):
    (here / "small.toml").write_text(SMALL_TOML)
    argv = shlex.split(block("own-model-cli", "bash").replace("\\\n", " "))
    assert argv[:2] == ["mi-defense", "audit"]
    assert main(argv[1:] + shlex.split(SMALL_CLI)) == 0
    out = here / "audit-mine"
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["model"] == "my_model.py:build"
    assert json.loads((out / "training_config.json").read_text())["model"] == "my_model.py:build"
    for e in results["defenses"]:
        assert (e["metadata"]["model"]["source"] == "my_model.py:build"
                and e["metadata"]["model"]["layers"] == LAYERS), e["name"]
        assert "model my_model.py:build (Conv2D, GroupNormalization" in e["recipe"]["description"]
    by = {e["defense"]: e for e in results["defenses"]}
    assert by["dpsgd"]["recipe"]["description"].startswith("DP-SGD: your model, cross-entropy")
    assert "pool keeps the package's ConvNet" in by["frepo"]["recipe"]["description"]
    report = (out / "report.md").read_text()
    assert "Your model my_model.py:build replaces that network" in report and "GroupNormalization" in report
    (here / "other.py").write_text((here / "my_model.py").read_text())  # the same folder, another model: refused
    assert main([a.replace("my_model.py", "other.py") for a in argv[1:]] + shlex.split(SMALL_CLI)) == 2
    assert "model differ" in capsys.readouterr().err


def shared(name: str, monkeypatch) -> None:
    """$MI_DEFENSE_DATA (else ../shared/data beside the repository) holding ``name``, for the
    examples' ``load_dataset``; else skip, saying what is missing."""
    beside = ROOT.parent / "shared" / "data"
    if not os.environ.get("MI_DEFENSE_DATA") and beside.is_dir():
        monkeypatch.setenv("MI_DEFENSE_DATA", str(beside))
    shared_data_dir(name)


# The audits of the examples at test size: threshold attacks only, 100 members, short runs.
SMALL_AUDIT = "references=0, members=100, nonmembers=100, real_steps=20, bootstrap=10, config='small.toml'"


@pytest.mark.slow
def test_arrays_example_audits_the_cnn_on_fashion_mnist_arrays_kept_in_the_private_folder(here, capsys, monkeypatch):
    shared("fashion_mnist", monkeypatch)
    (here / "small.toml").write_text(SMALL_TOML)
    code = smaller(block("own-model-arrays"), {"references=4": SMALL_AUDIT, "[:20000]": "[:1000]"})
    results = run_example(code, "own_model_arrays")["results"]
    printed = capsys.readouterr().out
    data = here / "audit-fashion" / "PRIVATE-do-not-release" / "data.npz"
    assert (results.config["dataset"] == str(Path("audit-fashion") / "PRIVATE-do-not-release" / "data.npz")
            and data.is_file())
    with np.load(data) as z:
        assert z["x_train"].shape == (1000, 28, 28, 1) and z["x_train"].dtype == np.uint8 and "x_test" not in z.files
    meta = results["none"].raw["metadata"]["model"]
    assert meta["source"] == "my_model:build" and meta["layers"] == LAYERS and str(meta) in printed
    assert (results["dpsgd:eps=8"].raw["metadata"]["model"] == meta
            and results["frepo:ipc=10"].raw["metadata"]["model"] == meta)
    assert results["dpsgd:eps=8"].raw["recipe"]["description"].startswith("DP-SGD: your model")
    import my_model

    with np.load(data) as z:
        x, y = z["x_train"], z["y_train"]
    kw = dict(model=my_model.build, defenses=["none", "dpsgd:eps=8", "frepo:ipc=10"], references=0, members=100,
              nonmembers=100, real_steps=20, bootstrap=10, config="small.toml", out="audit-fashion")
    again = mi_defense.audit(x, y, **kw)  # the same arrays: every run cached
    assert again.raw["timings"]["runs"]["trained"] == 0
    with pytest.raises(UserError, match="holds an audit of other arrays"):
        mi_defense.audit(x[::-1], y[::-1], **kw)


@pytest.mark.slow
def test_adult_example_audits_the_mlp_on_feature_vectors(here, capsys, monkeypatch):
    shared("adult", monkeypatch)
    (here / "small.toml").write_text(SMALL_TOML)
    code = smaller(block("own-model-adult"),
                   {"references=4": SMALL_AUDIT,
                    "adult.x_train, adult.y_train": "adult.x_train[:1000], adult.y_train[:1000]"})
    results = run_example(code, "own_model_adult")["results"]
    assert results.summary() in capsys.readouterr().out
    with np.load(here / "audit-adult" / "PRIVATE-do-not-release" / "data.npz") as z:
        assert z["x_train"].shape == (1000, 108) and z["x_train"].dtype == np.float32
    for name in ("none", "dpsgd:eps=8", "frepo:ipc=10"):
        assert results[name].raw["metadata"]["model"] == {
            "source": "my_model:build_mlp", "layers": ["Dense", "LayerNormalization", "Dense", "Dense"],
            "parameters": 108 * 64 + 64 + 128 + 64 * 64 + 64 + 64 * 2 + 2}, name
        assert 0.5 <= results[name].raw["test_accuracy"] <= 1
    assert results["dpsgd:eps=8"].raw["recipe"]["description"].startswith("DP-SGD: your model")
    # feature vectors: no image augmentation, the package's MLP as the pool
    frepo = results["frepo:ipc=10"].raw["recipe"]
    assert frepo["augment"] == "none" and "pool keeps the package's MLP" in frepo["description"]


@pytest.mark.slow
def test_trained_model_example_with_and_without_reference_runs_and_its_report(here, capsys, monkeypatch):
    shared("fashion_mnist", monkeypatch)
    code = smaller(block("own-model-trained"),
                   {"references=4": "references=2", "[:4000]": "[:1000]", "[:2000]": "[:500]",
                                                "[2000:4000]": "[500:1000]"})
    scope = run_example(code, "own_model_trained")
    found, weaker = scope["found"], scope["weaker"]
    assert {"lira_online_fixed", "rmia", "threshold_loss"} <= set(found)
    assert not {n for n in weaker if n.startswith(("lira", "rmia"))} and "threshold_loss" in weaker
    assert found["threshold_loss"]["auc"] == weaker["threshold_loss"]["auc"]  # the same model, the same scores
    assert found["lira_online_fixed"]["n_members"] == 500 and found["lira_online_fixed"]["auc"] > 0.5
    out = here / "audit-trained"
    record = json.loads((out / "results_model.json").read_text())
    assert record["references"] == 2 and record["outputs"] == "logits" and record["model"]["layers"] == LAYERS
    assert [d["class"] for d in record["model"]["layer_details"]] == LAYERS
    assert sum(d["parameters"] for d in record["model"]["layer_details"]) == record["model"]["parameters"]
    assert (record["primary_attack"] == "lira_online_fixed"
            and record["attacks"]["lira_online_fixed"]["auc"] == found["lira_online_fixed"]["auc"])
    report = (out / "report_model.md").read_text()
    assert f"{record['model']['parameters']:,} parameters" in report and "lira_online_fixed (primary)" in report
    assert "2 reference runs: LiRA uses one variance shared by every example" in report
    assert "<td>GroupNormalization</td>" in (out / "report_model.html").read_text()
    # probabilities are taken as their logarithm
    probs = tf.keras.Sequential([scope["model"], tf.keras.layers.Softmax()])
    members, nonmembers = scope["members"], scope["nonmembers"]
    same = mi_defense.audit_model(probs, members=members, nonmembers=nonmembers, attacks=["threshold_loss"])
    assert same["threshold_loss"]["auc"] == pytest.approx(weaker["threshold_loss"]["auc"], abs=1e-3)


def test_audit_model_writes_its_architecture_and_a_short_report(tmp_path):
    """The record and report_model.md/.html: layers by name, parameters, each attack's AUC and
    TPR at the low FPRs, the reference runs, and what the audit cannot show."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((80, 6)).astype(np.float32), np.arange(80) % 3

    def fit(model, a, b, seed):
        model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(a, b, epochs=3, batch_size=20, verbose=0)
        return model

    model = fit(mlp((6,), 3, 0), x[:40], y[:40], 0)
    kw = dict(members=(x[:40], y[:40]), nonmembers=(x[40:], y[40:]), bootstrap=5)
    for refs, out in ((0, tmp_path / "none"), (2, tmp_path / "two")):
        picked = ["threshold_loss", "lira_online_fixed", "rmia"] if refs else ["threshold_loss", "threshold_confidence"]
        found = mi_defense.audit_model(model, train=fit if refs else None, references=refs or 16, out=out,
                                       attacks=picked, **kw)
        record = json.loads((out / "results_model.json").read_text())
        assert record["references"] == refs and record["model"]["parameters"] == 6 * 16 + 16 + 32 + 16 * 3 + 3
        assert [(d["name"], d["class"], d["output_shape"], d["parameters"])
                for d in record["model"]["layer_details"]] == [
            (la.name, type(la).__name__, [None, width], la.count_params())
            for la, width in zip(model.layers, (16, 16, 3))]
        md, page = (out / "report_model.md").read_text(), (out / "report_model.html").read_text()
        assert "Model Sequential: 3 layers, 195 parameters" in md and "40 members, 40 non-members" in md
        for la in model.layers:
            assert f"| {la.name} | {type(la).__name__} |" in md and f"<td>{la.name}</td>" in page
        assert ("| attack | AUC [95% CI] | TPR at FPR 0.1 | TPR at FPR 0.01 | TPR at FPR 0.001 | TPR at FPR 0.0001 |"
                in md)
        for name, r in found.items():
            assert f"{r['auc']:.3f}" in md.split(f"| {name}", 1)[1].splitlines()[0], name
        assert "40 non-members resolve false-positive rates down to 0.025" in md and "(unresolved)" in md
        assert ("No reference runs" in md) == (refs == 0) and ("LiRA uses one variance" in md) == (refs == 2)
    assert "threshold_loss (primary)" in (tmp_path / "none" / "report_model.md").read_text()
    assert "lira_online_fixed (primary)" in md and "2 reference runs, each trained by" in md


def test_the_readme_shows_lines_of_the_tested_examples():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"Your own Keras model.*?```bash\n(.*?)```\n\n```python\n(.*?)```", readme, re.S)
    assert m, "the README's own-model lines are missing"
    examples = block("own-model-cli", "bash") + "".join(block(t) for t in ("own-model-arrays", "own-model-adult",
                                                                          "own-model-trained"))
    for line in (m.group(1) + m.group(2)).splitlines():
        assert line in examples, f"README line not in a tested example: {line}"
