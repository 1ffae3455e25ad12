"""Seams a reader relies on: reading results and rendering reports never import TensorFlow."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_reading_results_and_the_report_package_do_not_import_tensorflow():
    code = ("import sys, mi_defense.report, mi_defense.report.canaries, mi_defense.audit.signals\n"
            "from mi_defense.audit import AuditResults\n"
            "r = AuditResults.load('reports/mnist-cpu')\n"
            "assert r.defenses, 'no defenses read'\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
