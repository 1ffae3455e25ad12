"""The command line is a layer over the public API: what it imports, how its parser is built,
and that each command hands its flags to one API function and prints that function's result.
Nothing here trains a model: the API functions are replaced by stubs where a command would."""
import ast
import inspect
from pathlib import Path

import pytest

import mi_defense
import mi_defense.api as api
from mi_defense.cli import build_parser, main
from mi_defense.errors import UserError

ROOT = Path(__file__).resolve().parents[1]

# The public API and what a parser needs besides it: settings and their choices (the config
# package, which never trains), errors and the version; the CLI modules register each other.
PUBLIC = {"mi_defense.api", "mi_defense.errors", "mi_defense.version", "mi_defense.config",
          "mi_defense.cli_args", "mi_defense.cli_bench", "mi_defense.cli_canary"}
# Early checks of an output path named by its flag (``--out X is a file``) before any work.
PATH_CHECKS = {"mi_defense.io": {"check_writable_dir", "check_writable_file"}}
# bench and canary have no API function yet: their own entry points, and the JSON writer of canary.
ENTRY_POINTS = {
    "cli.py": {},
    "cli_args.py": {},
    "cli_bench.py": {"mi_defense.bench": None, "mi_defense.bench.references": None},
    "cli_canary.py": {"mi_defense.auditing.canary": None, "mi_defense.auditing.one_run": None,
                      "mi_defense.auditing.canary_record": None, "mi_defense.io": {"write_json"}},
}


def _imports(path: Path):
    """(module, names imported from it) for every ``mi_defense`` import anywhere in ``path``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "mi_defense":
            yield node.module, {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            yield from ((a.name, set()) for a in node.names if a.name.split(".")[0] == "mi_defense")


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_the_cli_imports_only_the_public_api(name):
    """Rule: ``mi_defense/cli*.py`` import from ``mi_defense`` only the public API
    (``mi_defense``, ``mi_defense.api``, ``mi_defense.errors``), ``mi_defense.version``, the
    config package (parser choices and settings: it runs nothing) and each other; besides,
    ``mi_defense.io``'s two output-path checks, so a bad ``--out``/``--json`` fails before any
    work with the flag's name. ``cli_bench`` and ``cli_canary`` may also call their own entry
    points (``mi_defense.bench``; ``auditing.canary``, ``auditing.one_run``,
    ``auditing.canary_record``, ``io.write_json``) until the API has functions for them."""
    allowed = {**{m: None for m in PUBLIC}, **PATH_CHECKS}  # module -> the names it may give (None: any)
    for module, names in ENTRY_POINTS[name].items():
        allowed[module] = None if names is None else allowed.get(module, set()) | names
    # ``from mi_defense import X``: X a public name, or a module allowed above
    allowed["mi_defense"] = set(mi_defense.__all__) | {m.split(".")[1] for m in allowed if m.count(".") == 1}
    wrong = []
    for module, names in _imports(ROOT / "mi_defense" / name):
        if module.startswith("mi_defense.config"):
            continue
        if module not in allowed or (allowed[module] is not None and not names <= allowed[module]):
            wrong.append(f"{module} ({', '.join(sorted(names))})")
    assert not wrong, f"mi_defense/{name} imports beyond the public API: " + "; ".join(wrong)


def test_commands_module_is_gone_and_the_cli_functions_are_short():
    assert not (ROOT / "mi_defense" / "commands.py").exists()
    long = [f"{p.name}:{n.name} ({n.end_lineno - n.lineno + 1})" for p in (ROOT / "mi_defense").glob("cli*.py")
            for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.FunctionDef)
            and n.end_lineno - n.lineno >= 60]
    assert not long, "functions over 60 lines: " + ", ".join(long)


def test_every_command_has_its_own_parser_function():
    import mi_defense.cli as cli
    import mi_defense.cli_bench as cli_bench
    import mi_defense.cli_canary as cli_canary

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    missing = [c for c in sub.choices if not any(hasattr(m, f"add_{c}_parser") for m in (cli, cli_bench, cli_canary))]
    assert not missing, "commands without an add_<command>_parser function: " + ", ".join(missing)


@pytest.mark.parametrize("name", api.__all__)
def test_every_argument_of_the_api_functions_is_documented(name):
    """Each argument of a function ``mi_defense.api`` defines is named in its docstring."""
    fn = getattr(api, name)
    if not inspect.isfunction(fn) or fn.__module__ != api.__name__:
        return
    doc = inspect.getdoc(fn) or ""
    undocumented = [p for p in inspect.signature(fn).parameters if f"{p}:" not in doc and f"``{p}``" not in doc]
    assert not undocumented, f"{name}: undocumented argument(s) {', '.join(undocumented)}"


def test_resolve_distill_preset_names_the_preset_it_chose():
    from mi_defense.config import DISTILL_PRESETS
    from mi_defense.config.toml import resolve_distill_preset

    assert resolve_distill_preset("auto", "test", n_members=1800) == ("small", DISTILL_PRESETS["small"])
    # DP: never chosen by the data
    assert resolve_distill_preset("auto", "test", n_members=1800, epsilon=1.0)[0] == "quick"
    assert resolve_distill_preset("paper", "test", n_members=10)[0] == "paper"


def _run_record(cfg, split, dataset):
    return {"n_members": len(split.members), "dataset": dataset.name, "n_synthetic": 10 * cfg.ipc, "complete": True,
            "steps_done": cfg.steps, "seconds": 1.0, "final_loss": 0.5, "config": {"width": cfg.width}}


def test_distill_resolves_auto_once_and_prints_the_preset_it_chose(tmp_path, capsys, monkeypatch):
    import mi_defense.config.toml as toml
    from mi_defense.distillation import api as distillation

    seen, choose = [], toml.choose_distill_preset
    monkeypatch.setattr(toml, "choose_distill_preset", lambda *a: seen.append(a) or choose(*a))
    monkeypatch.setattr(distillation, "distill", lambda dataset, split, cfg, out, **k: _run_record(cfg, split, dataset))
    assert main(["distill", "--dataset", "digits", "--ipc", "2", "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(seen) == 1
    assert out[0].startswith(f"preset auto: small for {seen[0][1]} members (small below 20000 members")
    assert out[1].startswith(f"distilled {seen[0][1]} members of digits into 20 synthetic images (done, 1000 steps")
    assert out[2] == (f"release: {tmp_path / 'd'}/distilled.npz, {tmp_path / 'd'}/distilled.png; private run record "
                      f"(never publish): {tmp_path / 'd'}/PRIVATE-do-not-release/")


def test_distill_dataset_is_the_api_behind_the_command(tmp_path, monkeypatch):
    from mi_defense.distillation import api as distillation

    monkeypatch.setattr(distillation, "distill", lambda dataset, split, cfg, out, **k: _run_record(cfg, split, dataset))
    said = []
    record = api.distill_dataset("digits", out=tmp_path / "d", preset="small", members=100, ipc=3, log=said.append,
                                 progress=True)
    assert record["n_members"] == 100 and record["n_synthetic"] == 30 and said == []  # a named preset is not announced
    with pytest.raises(UserError, match="out .* is a file"):
        (tmp_path / "f").write_text("x")
        api.distill_dataset("digits", out=tmp_path / "f")


def test_audit_and_run_hand_the_resolved_settings_to_the_api(tmp_path, capsys, monkeypatch):
    from mi_defense.config import AuditConfig

    calls = []
    monkeypatch.setattr(api, "audit", lambda **k: calls.append(k))  # a shard: nothing scored, nothing printed after
    assert main(["audit", "--dataset", "digits", "--defense", "none", "--references", "0", "--shard", "1/3", "--quiet",
                 "--together", "2", "--out", str(tmp_path / "o")]) == 0
    (k,) = calls
    assert isinstance(k["config"], AuditConfig) and k["config"].defenses == ("none",) and k["config"].references == 0
    assert ((k["out"], k["shard"], k["progress"], k["executor"], k["executor_options"])
            == (str(tmp_path / "o"), (1, 3), False, "local", {"together": 2}))
    assert capsys.readouterr().out.startswith("mi-defense audit: preset quick on digits; defenses none; 0 reference "
                                              "runs")
    assert main(["audit", "--dataset", "digits", "--shard", "3/3", "--quiet", "--out", str(tmp_path / "o")]) == 0
    assert calls[1]["shard"] == (3, 3)  # the CLI parses i/n only: api.audit checks the range (test_api_checks)
    monkeypatch.undo()
    assert main(["audit", "--dataset", "digits", "--shard", "3/3", "--out", str(tmp_path / "o")]) == 2
    assert "shard (3, 3): give (i, n), whole numbers with 0 <= i < n" in capsys.readouterr().err


def test_report_renders_through_the_api(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(api, "report", lambda results: {"html": Path(results) / "report.html"})
    assert main(["report", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'report.html'}\n"


def test_evaluate_prints_the_api_result(tmp_path, capsys, monkeypatch):
    row = {"test_accuracy_mean": 0.9, "test_accuracy_std": 0.01, "n_train": 100, "models": 3,
           "train_config": {"width": 32}, "train_steps": 7}
    calls = []
    monkeypatch.setattr(api, "evaluate", lambda *a, **k: calls.append((a, k)) or {**row, "random_subset": row})
    assert main(["evaluate", "--distilled", "d.npz", "--dataset", "digits", "--train-steps", "7", "--quiet"]) == 0
    (a, k), = calls
    assert a == ("d.npz", "digits") and k["steps"] == 7 and k["progress"] is False
    assert capsys.readouterr().out.splitlines() == [
        "distilled set (100 images): test accuracy 90.00 +- 1.00 % over 3 models of width 32, 7 steps each",
        "random real subset (100 images): test accuracy 90.00 +- 1.00 % over 3 models of width 32, 7 steps each"]


def test_data_list_prints_every_registered_dataset(capsys):
    assert main(["data", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "shape", "classes", "train", "test", "available"]
    assert [ln.split()[0] for ln in lines[1:1 + len(api.list_datasets())]] == [d["name"] for d in api.list_datasets()]
    with pytest.raises(UserError, match="unknown dataset 'nope'"):
        api.fetch_dataset("nope")
