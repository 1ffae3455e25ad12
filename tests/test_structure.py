"""Seams a reader relies on: reading results and rendering reports never import TensorFlow."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_reading_results_and_the_report_package_do_not_import_tensorflow():
    code = ("import sys, mi_defense.reporting, mi_defense.reporting.canaries, mi_defense.auditing.signals\n"
            "from mi_defense.auditing import AuditResults\n"
            "r = AuditResults.load('reports/mnist-cpu')\n"
            "assert r.defenses, 'no defenses read'\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def _import_graph(package: str = "mi_defense") -> dict:
    """Module -> the package modules it imports anywhere (module level or inside functions)."""
    import ast

    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (ROOT / package).rglob("*.py")}

    def resolve(name):
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph = {m: set() for m in files}
    for m, p in files.items():
        for node in ast.walk(ast.parse(p.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(package):
                names = [resolve(f"{node.module}.{a.name}") or resolve(node.module) for a in node.names]
            elif isinstance(node, ast.Import):
                names = [resolve(a.name) for a in node.names if a.name.startswith(package)]
            graph[m] |= {t for t in names if t and t != m}
    return graph


def test_no_import_cycle_in_the_package_even_through_function_level_imports():
    graph = _import_graph()
    state, cycles = {}, []

    def visit(m, path):
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_attacks_never_import_the_package_and_no_module_is_over_400_lines():
    assert not any("mi_defense" in p.read_text() for p in (ROOT / "attacks").rglob("*.py")
                   if "import mi_defense" in p.read_text()
                   or "from mi_defense" in p.read_text())
    long = [f"{p.relative_to(ROOT)} ({n})" for d in ("mi_defense", "attacks") for p in (ROOT / d).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400]
    assert not long, "over 400 lines: " + ", ".join(long)


def test_training_sits_below_distillation_and_its_package_and_recipes_do_not_import_tensorflow():
    graph = _import_graph()
    reached = {m for m in graph if m.split(".")[:2] == ["mi_defense", "training"]}
    todo = list(reached)
    while todo:
        for t in graph[todo.pop()] - reached:
            reached.add(t)
            todo.append(t)
    above = ("mi_defense.distillation", "mi_defense.defenses", "mi_defense.auditing", "mi_defense.reporting",
             "mi_defense.cli", "mi_defense.api")
    wrong = sorted(m for m in reached if m.startswith(above))
    assert not wrong, "mi_defense.training imports (directly or not) " + ", ".join(wrong)
    code = "import sys, mi_defense.training, mi_defense.training.recipes\nprint('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stdout + out.stderr


# The package's layers, top to bottom: a module imports (directly or inside a function) only
# modules of its own layer or of layers below it. ``config`` sits at the bottom, above the
# utilities every layer may use.
LAYERS = [
    ("mi_defense", "mi_defense.api", "mi_defense.api_inputs", "mi_defense.api_model", "mi_defense.cli",
     "mi_defense.cli_bench", "mi_defense.cli_canary", "mi_defense.cli_args", "mi_defense.bench"),
    ("mi_defense.reporting",),
    ("mi_defense.auditing",),
    ("mi_defense.defenses",),
    ("mi_defense.distillation",),
    ("mi_defense.training",),
    ("mi_defense.data", "mi_defense.models", "mi_defense.features", "mi_defense.accounting", "mi_defense.entropy",
     "mi_defense.progress", "mi_defense.tfenv"),
    ("mi_defense.config",),
    ("mi_defense.errors", "mi_defense.io", "mi_defense.version"),
]


def _layer(module: str) -> int:
    area = ".".join(module.split(".")[:2])
    found = [i for i, layer in enumerate(LAYERS) if area in layer]
    assert found, f"{module} is in no layer of LAYERS: add its package there"
    return found[0]


def test_every_module_imports_only_its_own_layer_or_lower_ones():
    graph = _import_graph()
    upward = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets if _layer(t) < _layer(m))
    assert not upward, "imports that point up the layers: " + "; ".join(upward)


def test_config_sits_below_everything_and_does_not_import_tensorflow():
    graph = _import_graph()
    reached = {m for m in graph if m.startswith("mi_defense.config")}
    todo = list(reached)
    while todo:
        for t in graph[todo.pop()] - reached:
            reached.add(t)
            todo.append(t)
    wrong = sorted(m for m in reached if _layer(m) < LAYERS.index(("mi_defense.config",)))
    assert not wrong, "mi_defense.config imports (directly or not) " + ", ".join(wrong)
    # one config package
    assert not [p for p in ("config.py", "presets.py", "audit/config.py") if (ROOT / "mi_defense" / p).exists()]
    code = ("import sys, mi_defense.config\n"
            "from mi_defense.config import AuditConfig, DistillConfig, resolve_audit_config\n"
            "resolve_audit_config('standard')\nprint('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stdout + out.stderr
