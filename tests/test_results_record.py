"""The typed record of results.json: every committed audit round-trips through it exactly,
and its report's Markdown, rendered again from the record, is the committed report.md.

The figures are not redrawn (that needs matplotlib and the run artifacts): the Markdown lists
the committed figures with the captions written into them, as a render that keeps them does."""
import copy
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mi_defense.auditing.migrate import SCHEMA, SchemaError, migrate
from mi_defense.auditing.record import AttackSummary, AuditRecord, DefenseEntry, RegeneratedRows
from mi_defense.auditing.results_check import ResultsError

ROOT = Path(__file__).resolve().parents[1]
AUDITS = [d for d in ("mnist-cpu", "fashion_mnist-cpu", "mnist-cpu-dp", "fashion_mnist-cpu-dp",
                      "fashion_mnist-cpu-small", "digits-quick")
          if (ROOT / "reports" / d / "results.json").is_file()]


def _committed(folder: str) -> dict:
    return json.loads((ROOT / "reports" / folder / "results.json").read_text())


@pytest.mark.parametrize("folder", AUDITS)
def test_a_committed_record_round_trips_exactly(folder):
    d = _committed(folder)
    m = migrate(d)
    assert m == d  # written by the current schema: nothing to migrate
    out = AuditRecord.from_json(m).to_json()
    assert out == m and json.dumps(out) == json.dumps(m)  # the same keys in the same order, nulls kept
    assert AuditRecord.from_json(d).to_json() == d


@pytest.mark.parametrize("folder", AUDITS)
def test_the_report_markdown_renders_again_from_the_record(folder, tmp_path):
    import shutil

    from mi_defense.auditing.results import load_record
    from mi_defense.io import write_text
    from mi_defense.reporting import FIGURES, captions, markdown, sections

    src = ROOT / "reports" / folder
    for name in ("results.json", "canaries.json"):
        if (src / name).is_file():
            shutil.copy(src / name, tmp_path / name)
    record = load_record(tmp_path)
    said = captions({name: src / name for name, _, _ in FIGURES if (src / name).is_file()})
    write_text(tmp_path / "report.md", markdown(record, sections(record, tmp_path), said))
    assert (tmp_path / "report.md").read_text() == (src / "report.md").read_text()


def test_migrate_fills_what_older_records_lack_and_changes_nothing_present():
    d = _committed(AUDITS[0])
    old = copy.deepcopy(d)
    del old["config"]["release_attack"], old["config"]["confidence"]
    old["defenses"][0]["leave_one_out_primary"] = {"attack": "lira_online_fixed", "targets": 16, "auc_mean": 0.52,
                                                   "auc_se": 0.01}
    before = copy.deepcopy(old)
    with pytest.raises(ResultsError, match="config.release_attack is missing"):
        AuditRecord.from_json(old)  # the reader relies on migrate, not on defaults of its own
    m = migrate(old)
    assert old == before  # the input is left as it is
    assert m["config"]["release_attack"] == "release_pixel" and m["config"]["confidence"] == 0.95
    assert m["defenses"][0]["leave_one_out_primary"]["fpr"] == "0.001"
    rec = AuditRecord.from_json(m)
    assert rec.to_json() == m and rec.defenses[0].evidence.leave_one_out_primary.fpr == "0.001"
    with pytest.raises(SchemaError, match="this version reads"):
        migrate(dict(d, schema="mi_defense.results/1"))
    assert SCHEMA == d["schema"]


def test_the_record_is_typed_and_checked_on_construction():
    d = _committed(AUDITS[0])
    rec = AuditRecord.from_json(d)
    e = rec.defenses[0]
    p = e.evidence.primary_attack
    assert isinstance(e, DefenseEntry) and p.name in e.attacks and 0 <= p.auc <= 1 and len(p.auc_ci) == 2
    assert e.attacks[p.name].tpr_at_fpr == d["defenses"][0]["attacks"][p.name]["tpr_at_fpr"]
    assert rec.split.n_nonmembers == d["split"]["n_nonmembers"] and rec.entry(e.name) is e
    bad = copy.deepcopy(d)
    bad["defenses"][0]["primary_attack"]["auc"] = float("nan")
    with pytest.raises(ResultsError, match="primary_attack.auc"):
        AuditRecord.from_json(bad)
    with pytest.raises(ResultsError, match="the record lacks class_names, input_shape, config, versions"):
        AuditRecord(schema=SCHEMA, dataset="x", defenses=rec.defenses, split=rec.split)  # built directly: checked too
    merged = dict(d, regenerated_rows=[{"rows": [e.name], "replaced": [e.name], "dropped": [],
                                        "versions": {"mi-defense": "9"}, "machine": None, "config": {}}])
    again = AuditRecord.from_json(merged)
    assert again.to_json() == merged and again.regenerated_rows[0].rows == (e.name,)


def test_a_replaced_record_writes_the_fields_set_and_is_checked_again():
    d = next(d for d in map(_committed, AUDITS) if "regenerated_rows" not in d
             and "strongest_release_attack" not in d["defenses"][0])
    rec = AuditRecord.from_json(d)
    assert rec.checked and "checked" not in {f.name for f in dataclasses.fields(AuditRecord) if f.init}
    with pytest.raises(TypeError):
        AuditRecord(checked=True)  # not an argument: no record skips the check
    rows = (RegeneratedRows(rows=("x",), replaced=(), dropped=()),)
    out = dataclasses.replace(rec, regenerated_rows=rows).to_json()
    assert list(out) == list(d) + ["regenerated_rows"]  # the keys read in their order, then the field set
    assert out["regenerated_rows"] == [{"rows": ["x"], "replaced": [], "dropped": []}]
    e = rec.defenses[0]
    strong = e.evidence.primary_attack
    e2 = dataclasses.replace(e, evidence=dataclasses.replace(e.evidence, strongest_release_attack=strong))
    assert e2.to_json()["strongest_release_attack"] == strong.to_json()  # a key of a group the entry's JSON lacked
    assert dataclasses.replace(rec, defenses=(e2,) + rec.defenses[1:]).to_json()["defenses"][0] == e2.to_json()
    with pytest.raises(ResultsError, match="dataset is NoneType, not a string"):
        dataclasses.replace(rec, dataset=None)  # replace constructs the record again: checked again
    with pytest.raises(ResultsError, match=r"regenerated_rows\[0\].rows is missing"):
        dataclasses.replace(rec, regenerated_rows=(RegeneratedRows(),))


def test_one_rule_says_whether_a_declared_attacks_tpr_is_resolved():
    from mi_defense.reporting import figures, tables

    d = copy.deepcopy(_committed(AUDITS[0]))
    e = d["defenses"][0]
    p = e["primary_attack"]
    e["attacks"][p["name"]]["unresolved_fprs"], p["unresolved_fprs"] = [], [p["fpr"]]  # listed by the summary alone
    entry = AuditRecord.from_json(d).defenses[0]
    s = entry.evidence.primary_attack
    assert (entry.unresolved(s) and p["fpr"] in entry.unresolved_fprs_of(s)
            and not entry.attack(s.name).unresolved(s.fpr))
    assert figures._unresolved(e, p)  # the figures apply the same rule to the JSON
    assert tables.resolved_tpr(entry, s)[0] != s.fpr or tables.resolved_tpr(entry, s)[3]
    assert ("(below 1/#non-members: the TPR at zero false positives)"
            in tables._attack_phrase(entry, s, "the primary attack"))
    clear = dataclasses.replace(s, unresolved_fprs=())
    assert not entry.unresolved(clear) and not figures._unresolved(e, clear.to_json())
    assert "below 1/#non-members" not in tables._attack_phrase(entry, clear, "the primary attack")
    assert entry.unresolved(AttackSummary(name=s.name, fpr="0.5"), "0.5") is False


def test_reading_the_record_and_rendering_its_markdown_import_no_tensorflow():
    code = ("import sys, mi_defense.auditing.results as r\n"
            f"rec = r.load_record('reports/{AUDITS[0]}')\n"
            "from mi_defense.reporting import markdown, sections\n"
            f"markdown(rec, sections(rec, r.Path('reports/{AUDITS[0]}')), {{}})\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_the_record_holds_its_own_copy():
    d = _committed(AUDITS[0])
    rec = AuditRecord.from_json(d)
    d["config"]["members"] = -1
    d["defenses"][0]["metadata"]["marker"] = 1
    out = rec.to_json()
    assert out["config"]["members"] != -1 and "marker" not in out["defenses"][0]["metadata"]
    out["config"]["members"] = -2
    assert rec.to_json()["config"]["members"] != -2
