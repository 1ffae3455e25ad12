"""A results.json the report cannot trust is refused in one line, before anything is drawn;
a report that fails part-way leaves the folder as it was."""
import copy
import json

import pytest

from mi_defense.cli import main
from mi_defense.errors import UserError

FPRS = {"0.1": 0.2, "0.01": 0.05, "0.001": 0.01}
CIS = {k: [0.0, min(1.0, 2 * v)] for k, v in FPRS.items()}


def _attack(name, auc=0.6):
    return {"name": name, "auc": auc, "auc_ci": [auc - 0.05, auc + 0.05], "advantage": 0.1, "tpr_at_fpr": dict(FPRS),
            "tpr_at_fpr_ci": dict(CIS), "unresolved_fprs": [], "n_members": 100, "n_nonmembers": 100,
            "roc": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.6, 1.0]},
            "slices": {"class=0": {"n_members": 50, "auc": auc, "tpr_at_fpr": dict(FPRS), "unresolved_fprs": []}}}


def _summary(name, auc=0.6):
    return {"name": name, "auc": auc, "auc_ci": [auc - 0.05, auc + 0.05], "fpr": "0.001", "tpr": 0.01,
            "tpr_ci": [0.0, 0.02], "tpr_at_fpr": dict(FPRS), "tpr_at_fpr_ci": dict(CIS)}


def _entry(name, defense):
    return {"name": name, "key": name.replace(":", "_"), "defense": defense, "params": {}, "test_accuracy": 0.9,
            "train_accuracy": 1.0, "generalization_gap": 0.1,
            "recipe": {"name": "real-data", "description": "cross-entropy"}, "undertrained": False,
            "claimed_epsilon": None, "primary_attack": _summary("threshold_loss"), "release_attack": None,
            "epsilon_lower_bound": {"value": 0.5, "attack": "threshold_loss", "confidence": 0.95},
            "strongest_attack": _summary("threshold_loss"), "attacks": {"threshold_loss": _attack("threshold_loss")},
            "privacy_statement": "no guarantee", "auc_over_steps": [[10, 0.55], [20, 0.6]]}


def record():
    """A small results record of the current schema, every field the report reads filled in."""
    from mi_defense.auditing.results import SCHEMA

    return {"schema": SCHEMA, "dataset": "toy", "class_names": ["a", "b"], "input_shape": [8, 8, 1],
            "config": {"references": 0, "targets": 1, "bootstrap": 10, "seed": 0, "fprs": [0.1, 0.01, 0.001],
                       "primary_attack": None, "release_attack": "release_pixel", "confidence": 0.95,
                       "train": {"width": 8, "depth": 2},
                       "distill": {"width": 8, "depth": 2, "pool_norm": "batch", "batch_real": 32, "pool_size": 2,
                                   "steps": 5}},
            "split": {"hash": "0" * 64, "seed": 0, "n_members": 100, "n_nonmembers": 100, "n_test": 50,
                      "test_source": "test"},
            "versions": {"python": "3", "platform": "linux"}, "machine": {"cpus": 2, "gpus": []},
            "timings": {"scoring_seconds": 1.0, "training_seconds_all_runs": {"none": 3.0}},
            "defenses": [_entry("none", "none"), _entry("subset:n=10", "subset")]}


def _write(folder, rec, text=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(text if text is not None else json.dumps(rec))
    return folder


def _refused(folder, capsys, *needles):
    before = sorted(p.name for p in folder.iterdir())
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing drawn, no staging folder left
    return err


def test_the_sample_record_renders(tmp_path, capsys):
    d = _write(tmp_path / "ok", record())
    assert main(["report", str(d)]) == 0
    assert (d / "report.html").is_file() and (d / "fig1_roc.png").is_file()
    assert not list(d.glob(".report-staging*"))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None])
def test_a_non_finite_auc_is_refused_not_read_as_no_evidence(tmp_path, capsys, value):
    rec = record()
    rec["defenses"][1]["primary_attack"]["auc"] = value
    rec["defenses"][1]["primary_attack"]["auc_ci"] = None
    err = _refused(_write(tmp_path / "r", rec), capsys, "defenses[1] (subset:n=10).primary_attack.auc")
    assert "no evidence" not in err


def test_non_finite_scores_anywhere_the_report_reads_are_refused(tmp_path, capsys):
    for i, edit in enumerate([lambda r: r["defenses"][0]["attacks"]["threshold_loss"].__setitem__("auc", float("nan")),
                              lambda r: r["defenses"][0]["attacks"]["threshold_loss"]["roc"]["tpr"].__setitem__(
                                  1, float("nan")),
                              lambda r: r["defenses"][0]["primary_attack"]["tpr_at_fpr"].__setitem__(
                                  "0.001", float("nan")),
                              lambda r: r["defenses"][0]["epsilon_lower_bound"].__setitem__("value", float("inf"))]):
        rec = record()
        edit(rec)
        _refused(_write(tmp_path / str(i), rec), capsys, "finite")


CASES = {
    "unknown primary attack": (lambda r: r["defenses"][0]["primary_attack"].__setitem__("name", "lira_nowhere"),
                               "primary_attack.name names 'lira_nowhere'"),
    "huge count": (lambda r: r["defenses"][0]["attacks"]["threshold_loss"].__setitem__("n_nonmembers", 1e308),
                   "n_nonmembers is float, not a whole number"),
    "huge split": (lambda r: r["split"].__setitem__("n_nonmembers", 10 ** 400), "split.n_nonmembers is 1000"),
    "huge auc": (lambda r: r["defenses"][0]["primary_attack"].__setitem__("auc", 1e308), "outside [0, 1]"),
    "dict as a name": (lambda r: r["defenses"][0].__setitem__("name", {"a": 1}),
                       "defenses[0].name is dict, not a string"),
    "dict as a class name": (lambda r: r["class_names"].__setitem__(0, {}), "class_names[0] is dict"),
    "auc as a string": (lambda r: r["defenses"][0]["attacks"]["threshold_loss"].__setitem__("auc", "0.9"),
                        "auc is str, not a number"),
    "list as params": (lambda r: r["defenses"][0].__setitem__("params", [1]), "params is list"),
    "missing attacks": (lambda r: r["defenses"][0].pop("attacks"), "defenses[0] (none) lacks attacks"),
    "missing roc": (lambda r: r["defenses"][0]["attacks"]["threshold_loss"].pop("roc"),
                    "threshold_loss'].roc is missing"),
    "bool as accuracy": (lambda r: r["defenses"][0].__setitem__("test_accuracy", True), "test_accuracy is bool"),
    "bad fpr key": (lambda r: r["defenses"][0]["primary_attack"]["tpr_at_fpr"].__setitem__("often", 0.1), "'often'"),
    "inverted ci": (lambda r: r["defenses"][0]["primary_attack"].__setitem__("auc_ci", [0.9, 0.1]), "low end is above"),
    "short roc": (lambda r: r["defenses"][0]["attacks"]["threshold_loss"]["roc"]["fpr"].pop(), "2 FPRs and 3 TPRs"),
    # the rows a later audit put in the record (auditing.merge): the set-up lines join their names
    "null regenerated rows": (lambda r: r.__setitem__("regenerated_rows", [{"rows": None}]),
                              "regenerated_rows[0].rows is NoneType, not a list"),
    "string as a row set": (lambda r: r.__setitem__("regenerated_rows", ["x"]),
                            "regenerated_rows[0] is str, not an object"),
    "numbers as rows": (lambda r: r.__setitem__("regenerated_rows", [{"rows": [1, 2]}]),
                        "regenerated_rows[0].rows[0] is int, not a string"),
    "rows missing": (lambda r: r.__setitem__("regenerated_rows", [{"replaced": []}]),
                     "regenerated_rows[0].rows is missing"),
    "string as replaced rows": (lambda r: r.__setitem__("regenerated_rows", [{"rows": ["a"], "replaced": "a"}]),
                                "regenerated_rows[0].replaced is str, not a list"),
    "list as a row set's config": (lambda r: r.__setitem__("regenerated_rows", [{"rows": ["a"], "config": [1]}]),
                                   "regenerated_rows[0].config is list, not an object"),
    "object as the row sets": (lambda r: r.__setitem__("regenerated_rows", {"rows": ["a"]}),
                               "regenerated_rows is dict, not a list"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_record_is_one_line_naming_the_field(tmp_path, capsys, case):
    edit, needle = CASES[case]
    rec = copy.deepcopy(record())
    edit(rec)
    err = _refused(_write(tmp_path / "r", rec), capsys, needle)
    assert "re-run 'mi-defense audit --out" in err


def test_deeply_nested_json_is_one_line(tmp_path, capsys):
    text = '{"defenses": ' + "[" * 200_000 + "]" * 200_000 + "}"
    _refused(_write(tmp_path / "r", None, text), capsys, "nested too deeply")


def test_audit_results_from_dict_checks_the_schema():
    from mi_defense.auditing.results import AuditResults

    rec = record()
    assert AuditResults.from_dict(rec).summary().count("\n") >= 2
    rec["defenses"][0]["primary_attack"]["auc"] = float("nan")
    with pytest.raises(UserError, match="primary_attack.auc is nan"):
        AuditResults.from_dict(rec)
    for bad, needle in (([{"rows": None}], r"regenerated_rows\[0\].rows is NoneType"),
                        (["x"], r"regenerated_rows\[0\] is str"),
                        ([{"rows": [1, 2]}], r"regenerated_rows\[0\].rows\[0\] is int")):
        with pytest.raises(UserError, match=needle):
            AuditResults.from_dict(dict(record(), regenerated_rows=bad))
    # the same fix as 'mi-defense report' (load_record) suggests for the same error
    with pytest.raises(UserError, match=r"results in out/a: .*; re-run 'mi-defense audit --out out/a' to rewrite it"):
        AuditResults.from_dict(rec, "out/a")
    with pytest.raises(UserError, match=r"re-score it: re-run 'mi-defense audit --out out/a'"):
        AuditResults.from_dict(dict(rec, schema="mi_defense.results/1"), "out/a")
    with pytest.raises(UserError, match="nested too deeply"):
        AuditResults.from_json("[" * 200_000 + "]" * 200_000)


@pytest.mark.slow
def test_a_report_that_fails_part_way_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    from mi_defense.reporting import render_report, tables

    fresh = _write(tmp_path / "fresh", record())
    monkeypatch.setattr(tables, "csv_text", lambda results: (_ for _ in ()).throw(RuntimeError("disk gone")))
    with pytest.raises(RuntimeError):
        render_report(fresh)
    assert sorted(p.name for p in fresh.iterdir()) == ["results.json"]  # no figure without its report
    monkeypatch.undo()

    done = _write(tmp_path / "done", record())
    render_report(done)
    before = {p.name: p.read_bytes() for p in done.iterdir()}
    rec = record()
    rec["dataset"] = "changed"
    (done / "results.json").write_text(json.dumps(rec))
    before["results.json"] = (done / "results.json").read_bytes()
    monkeypatch.setattr(tables, "csv_text", lambda results: (_ for _ in ()).throw(RuntimeError("disk gone")))
    with pytest.raises(RuntimeError):
        render_report(done)
    assert {p.name: p.read_bytes() for p in done.iterdir()} == before  # the previous report, whole


def test_a_killed_render_leaves_no_staging_folder_behind(tmp_path):
    from mi_defense.reporting import render_report

    d = _write(tmp_path / "r", record())
    stale = d / ".report-staging.999999999.abc"  # no such process
    stale.mkdir()
    (stale / "fig1_roc.png").write_bytes(b"half")
    render_report(d)
    assert not stale.exists() and (d / "report.html").is_file()
