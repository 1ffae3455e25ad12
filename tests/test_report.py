import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mi_defense.auditing import AuditConfig, run_audit
from mi_defense.cli import main
from mi_defense.config import DistillConfig, TrainConfig
from mi_defense.reporting import FIGURES, render_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """A small real audit on digits: no defense, FRePo and DP-FRePo, two reference runs."""
    out = tmp_path_factory.mktemp("report") / "audit"
    cfg = AuditConfig(dataset="digits", members=150, nonmembers=150, references=2, bootstrap=20, real_steps=150,
                      n_jobs=1, defenses=("none", "frepo:ipc=1,init=real", "frepo:ipc=1,eps=8"),
                      attacks=("threshold_loss", "threshold_logit_confidence", "lira_offline_fixed", "rmia",
                               "release_pixel", "release_feature"),
                      train=TrainConfig(width=8, depth=2, steps=150, warmup=20),
                      distill=DistillConfig(width=8, depth=2, batch_real=64, steps=10, pool_size=2,
                                            max_online_updates=5, checkpoint_every=0))
    run_audit(cfg, out, progress=False, log=lambda s: None)
    return out


@pytest.mark.slow
def test_dp_frepo_defense_claims_its_epsilon_and_copies_no_member(audited):
    results = json.loads((audited / "results.json").read_text())
    dp = next(e for e in results["defenses"] if e["name"] == "frepo:ipc=1,eps=8")
    meta = dp["metadata"]
    assert 0 < dp["claimed_epsilon"] <= 8 and meta["init"] == "smooth-noise" and meta["distill_lr"] == 1e-2
    assert meta["clip_space"] == "readout"  # recorded, so the cache can tell the spaces apart
    # auto: fixed under DP
    assert "DP-FRePo" in dp["privacy_statement"] and "normalisation is fixed" in dp["privacy_statement"]
    assert dp["released_artifact"] is not None
    plain = next(e for e in results["defenses"] if e["name"] == "frepo:ipc=1,init=real")
    assert plain["claimed_epsilon"] is None
    from mi_defense.auditing.record import DefenseEntry
    from mi_defense.reporting.tables import verdict

    assert "the claimed guarantee, which rests on its proof and accountant" in verdict(DefenseEntry.from_json(dp), None)
    assert "DP-FRePo" in verdict(DefenseEntry.from_json(dp), None).split("never confirm it): ")[1]
    assert "no formal privacy guarantee" in verdict(DefenseEntry.from_json(plain), None)


@pytest.mark.slow
def test_report_renders_every_figure_and_verdict(audited):
    paths = render_report(audited)
    drawn = [name for name, _, _ in FIGURES if name in paths]
    # 150 non-members over 10 classes resolve no per-class TPR at 1% FPR: that figure is left out, not drawn hatched
    assert drawn == [name for name, _, _ in FIGURES if name != "fig5_per_class.png"]
    for name in drawn:
        p = audited / name
        assert p.is_file() and p.read_bytes()[:8] == PNG, name
    assert not (audited / "fig5_per_class.png").exists()
    page = (audited / "report.html").read_text()
    results = json.loads((audited / "results.json").read_text())
    for e in results["defenses"]:
        assert e["name"] in page
    assert page.count('class="verdict sev-') == len(results["defenses"])
    assert '<div class="limitations">' in page and "Glossary of attacks" in page and "lira_*_fixed" in page
    assert "no formal privacy guarantee" in page and "no defense and no privacy guarantee" in page
    assert page.count("data:image/png;base64,") == len(drawn)  # self-contained
    md = (audited / "report.md").read_text()
    assert "| defense |" in md and "frepo:ipc=1" in md
    rows = (audited / "results.csv").read_text().strip().splitlines()
    assert (rows[0].startswith("defense,test_accuracy")
            and len(rows) == 1 + sum(len(e["attacks"]) for e in results["defenses"]))
    assert set(paths) >= {"html", "md", "csv"}
    # FRePo's released set and the members it was initialised from are both in the artifacts
    with np.load(next((audited / "artifacts").glob("frepo_*init=real*/released.npz"))) as z:
        assert z["images_uint8"].shape[0] == 10 and z["init_member_images"].shape == (10, 8, 8, 1)
    fr = next(e for e in results["defenses"] if e["defense"] == "frepo")
    assert "init_members" in fr["attacks"]["release_pixel"]["slices"]
    # declared evidence: primary attack (threshold_loss: the first listed attack on the model), release attack, bound
    assert all(e["primary_attack"]["name"] == "threshold_loss"
               and e["epsilon_lower_bound"]["value"] >= 0 for e in results["defenses"])
    assert (fr["release_attack"]["name"] == "release_pixel"
            and set(fr["epsilon_lower_bound"]["per_attack"]) == {"threshold_loss", "release_pixel"})
    none = next(e for e in results["defenses"] if e["defense"] == "none")
    assert (none["recipe"]["name"] == "real-data" and none["recipe"]["loss"] == "xent"
            and fr["recipe"]["name"] == "frepo-protocol")
    assert ("## Training recipes" in md and "cross-entropy" in md and "audited ε ≥" in md
            and "selected on held-out examples" in md)


@pytest.mark.slow
def test_report_renders_again_from_a_copy_without_cache_or_artifacts(audited, tmp_path):
    # what the committed reference reports hold: results.json and the figures, no run cache
    render_report(audited)
    copy = tmp_path / "copy"
    shutil.copytree(audited, copy, ignore=shutil.ignore_patterns("cache", "artifacts", "report.html"))
    render_report(copy)
    assert (copy / "report.md").read_text() == (audited / "report.md").read_text()
    assert (copy / "fig2_frontier.png").read_bytes()[:8] == PNG
    assert (copy / "report.html").read_text().count("data:image/png;base64,") == len(FIGURES) - 1  # figure 4 kept


@pytest.mark.slow
def test_user_text_is_inert_in_markdown_and_figures(audited, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(audited, copy, ignore=shutil.ignore_patterns("cache", "artifacts"))
    results = json.loads((copy / "results.json").read_text())
    results["defenses"][0]["name"] = "<img src=x onerror=alert(1)> $\\alpha$ | x"
    results["class_names"][0] = "$x^$"
    (copy / "results.json").write_text(json.dumps(results))
    render_report(copy)  # matplotlib would fail on "$x^$" as mathtext
    md = (copy / "report.md").read_text()
    assert "<img src=x" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "<img src=x" not in (copy / "report.html").read_text()
    from mi_defense.reporting import figures

    ref = json.loads(REFERENCE.read_text())  # the per-class figure, drawn where classes resolve, shows the class names
    ref["class_names"][0] = "$x^$"
    assert figures.per_class(ref, tmp_path / "f5.png").read_bytes()[:8] == PNG


def test_report_cli_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err
    (tmp_path / "results.json").write_text("{broken")
    assert main(["report", str(tmp_path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    for bad, msg in (({"schema": "mi_defense.results/1", "defenses": [{}]}, "re-score it"),
                     ({"schema": "mi_defense.results/2", "defenses": []}, "holds no defenses"),
                     ({"schema": "mi_defense.results/2", "defenses": [{"name": "x"}]}, "lacks")):
        (tmp_path / "results.json").write_text(json.dumps(bad))
        assert main(["report", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "report.html").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.browser
def test_report_images_load_in_headless_chromium(audited):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Chromium and ChromeDriver are not installed; 'make browser-test' installs them")
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="selenium is not installed; 'make browser-test' installs it")
    from selenium.webdriver.chrome.service import Service

    render_report(audited)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.set_window_size(1400, 900)
        driver.get((audited / "report.html").resolve().as_uri())
        n_images = driver.execute_script("return document.images.length")
        broken = driver.execute_script(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt)")
        widths = driver.execute_script("return Array.from(document.images).map(i => i.naturalWidth)")
        text = driver.execute_script("return document.body.innerText")
        classes = driver.execute_script("return Array.from(document.querySelectorAll('p.verdict')).map(p => "
                                        "p.className)")
        box = driver.execute_script("const b = document.querySelector('div.limitations'); return b ? b.innerText : ''")
        first = driver.execute_script("return document.querySelector('p.verdict').innerText")
        fit = driver.execute_script(SUMMARY_FIT)
    finally:
        driver.quit()
    assert n_images == len(FIGURES) - 1 and broken == [] and min(widths) > 100  # no per-class figure at 150 non-members
    assert "Verdicts" in text and "frepo:ipc=1" in text
    assert (len(classes) == 3
            and all(c.split()[1] in ("sev-leaking", "sev-no-evidence", "sev-guarantee") for c in classes))
    assert "smallest FPR 150 non-members resolve" in box and "2 reference runs" in box
    assert first.startswith("none: ")
    # at 1400 pixels the summary's claimed-epsilon header is in
    # view, or its box scrolls sideways to it; the page never does
    assert fit["inner"] > 1300 and fit["overflowX"] == "auto" and fit["page"] <= fit["inner"], fit
    in_view = fit["boxLeft"] <= fit["thLeft"] and fit["thRight"] <= fit["boxRight"] + 0.5
    assert (in_view
            or (fit["scrollWidth"] > fit["clientWidth"]
                and fit["thRight"] <= fit["boxLeft"] + fit["scrollWidth"] + 0.5)), fit
    assert in_view, fit  # privacy first: the second column


SUMMARY_FIT = """
const box = document.getElementById('summary');
const th = Array.from(box.querySelectorAll('th')).find(t => t.textContent.trim() === 'claimed ε');
const b = box.getBoundingClientRect(), h = th.getBoundingClientRect();
return {inner: window.innerWidth, page: document.documentElement.scrollWidth, \
overflowX: getComputedStyle(box).overflowX,
        boxLeft: b.left, boxRight: b.right, thLeft: h.left, thRight: h.right, scrollWidth: box.scrollWidth, \
clientWidth: box.clientWidth};
"""


REFERENCE = Path(__file__).resolve().parents[1] / "reports" / "fashion_mnist-cpu" / "results.json"


def test_verdicts_lead_with_the_worst_finding_and_its_severity():
    from mi_defense.auditing.results import load_record
    from mi_defense.reporting import findings, tables

    results = load_record(REFERENCE.parent)
    by = {e.name: e for e in results.defenses}
    fr = by["frepo:ipc=10"]
    init = fr.attacks["release_pixel"].slices["init_members"]
    kind, what, s = findings.worst_finding(fr)
    # the 100 members copied at initialisation are the worst finding, not the whole-set TPR
    assert (kind == "init_members" and what.startswith("the 100 members copied")
            and s.tpr == init["tpr_at_fpr"]["0.001"] > fr.evidence.release_attack.tpr)
    v = tables.verdict(fr, by["none"].test_accuracy)
    assert (v.startswith("**frepo:ipc=10: clearly leaking.** Primary attack AUC ")
            and "Worst finding: the 100 members copied" in v)
    lead = tables.verdict(by["none"], None, 1000).split(" Worst finding")[0]
    assert lead.endswith("1000 non-members resolve FPRs down to 0.1%.") and "AUC 0.7" in lead
    assert findings.severity(by["none"]) == "leaking"      # AUC 0.717, CI far above 0.5
    assert findings.severity(by["dpsgd-linear:eps=8"]) == "guarantee"  # AUC above 0.5, bound 0.04 against a claim of 8
    dp8 = tables.verdict(by["dpsgd-linear:eps=8"], None)
    assert dp8.startswith("**dpsgd-linear:eps=8: DP claim, not contradicted by this audit.**")
    assert "leakage that epsilon = 8 permits, measured" in dp8
    assert "permits" not in tables.verdict(by["dpsgd-linear:eps=1"], None)  # its AUC interval covers 0.5
    # AUC 0.513 with a CI over 0.5 and an epsilon bound of 0: the TPR CI at 0.1% FPR alone is not evidence
    assert findings.severity(by["subset:n=100"]) == "no-evidence"


def test_severity_known_answers():
    from mi_defense.auditing.record import DefenseEntry
    from mi_defense.reporting import findings

    severity = lambda e: findings.severity(DefenseEntry.from_json(e))

    def entry(defense, auc_ci, tpr_ci, eps=0.0, claimed=None):
        s = {"name": "lira_online_fixed", "auc": sum(auc_ci) / 2, "auc_ci": auc_ci, "fpr": "0.001",
             "tpr": sum(tpr_ci) / 2, "tpr_ci": tpr_ci}
        return {"defense": defense, "attacks": {}, "primary_attack": s, "claimed_epsilon": claimed,
                "epsilon_lower_bound": {"value": eps}}

    assert severity(entry("none", [0.49, 0.53], [0.0, 0.001])) == "no-evidence"
    assert severity(entry("none", [0.51, 0.55], [0.0, 0.001])) == "leaking"
    # a TPR CI at 1 false positive is no test
    assert severity(entry("subset", [0.45, 0.55], [0.002, 0.01])) == "no-evidence"
    assert severity(entry("subset", [0.45, 0.55], [0.0, 0.01], eps=0.3)) == "leaking"
    assert severity(entry("dpsgd", [0.49, 0.53], [0.0, 0.001], eps=0.5, claimed=1.0)) == "guarantee"
    # audit contradicts the claim
    assert severity(entry("dpsgd", [0.6, 0.7], [0.0, 0.2], eps=2.5, claimed=1.0)) == "leaking"
    # DP-FRePo claims one too
    assert severity(entry("frepo", [0.49, 0.53], [0.0, 0.001], eps=0.5, claimed=8.0)) == "guarantee"
    assert severity(entry("frepo", [0.49, 0.53], [0.0, 0.001], eps=0.5)) == "leaking"  # plain FRePo claims none
    canary = {"claimed_epsilon": 1.0, "audited_epsilon_lower_bound": 1.4, "broken": None, "noise_multiplier": 5.0}
    dp = dict(entry("dpsgd", [0.49, 0.53], [0.0, 0.001], claimed=1.0), canary_audits=[{**canary, "broken": "noise"}],
              metadata={"noise_multiplier": 5.0})
    assert severity(dp) == "guarantee"  # a broken control above the claim is the audit's power, not a finding
    # the correct mechanism's canary audit exceeds its claim
    assert severity(dict(dp, canary_audits=[canary])) == "leaking"
    # ... but a one-step audit at another noise multiplier does not audit this defense
    assert severity(dict(dp, canary_audits=[{**canary, "noise_multiplier": 3.0}])) == "guarantee"


def test_an_attack_whose_auc_interval_covers_chance_is_no_finding():
    from mi_defense.auditing.record import DefenseEntry
    from mi_defense.reporting import findings

    worst_finding = lambda e: findings.worst_finding(DefenseEntry.from_json(e))
    s = {"name": "release_pixel", "auc": 0.486, "auc_ci": [0.45, 0.52], "fpr": "0.001", "tpr": 0.01}
    assert worst_finding({"attacks": {}, "primary_attack": s}) is None
    assert (worst_finding({"attacks": {}, "primary_attack": dict(s, auc=0.56, auc_ci=[0.53, 0.59])}).kind
            == "primary_attack")


def test_limitations_state_the_resolution_and_the_reference_runs():
    from mi_defense.auditing.results import load_record
    from mi_defense.reporting.findings import limitations

    text = " ".join(limitations(load_record(REFERENCE.parent)))
    assert "1/1000 = 0.1%" in text and "0.01% FPR are unresolved" in text and "16 reference runs" in text


@pytest.mark.slow
def test_canary_audits_recorded_beside_the_results_appear_in_the_report(audited, tmp_path, capsys):
    out = tmp_path / "with-canaries"
    shutil.copytree(audited, out)
    from mi_defense.auditing.canary_record import add

    step = {"mechanism": "dpsgd", "claimed_epsilon": 0.28, "run_epsilon": 1.0, "audited_epsilon_lower_bound": 0.0,
            "confidence": 0.95, "broken": None, "trials": 120}
    add(out, step)
    add(out, {**step, "broken": "noise", "audited_epsilon_lower_bound": 2.76})
    # the same audit again replaces the first
    add(out, {**step, "broken": "noise", "audited_epsilon_lower_bound": 2.80})
    add(out, {"defense": "dpsgd:eps=1", "claimed_epsilon": 1.0, "audited_epsilon_lower_bound": 0.0, "confidence": 0.95,
              "broken": None, "canaries": 200, "kind": "mislabelled", "guesses": 20, "right": 24})
    assert len(json.loads((out / "canaries.json").read_text())) == 3
    render_report(out)
    md = (out / "report.md").read_text()
    assert "## Canary audits of the DP mechanisms" in md and "| CAUGHT |" in md and "2.80" in md and "2.76" not in md
    assert "24/40 right" in md and md.count("| below the claim |") == 2
    assert "- one step: 1 of 1 broken mechanisms caught\n" in md
    (out / "canaries.json").write_text("{}")
    assert main(["report", str(out)]) == 2
    assert "canaries.json must be a list" in capsys.readouterr().err


def test_the_per_class_figure_is_drawn_where_some_class_resolves_its_fpr(tmp_path):
    from mi_defense.reporting import figures

    results = json.loads(REFERENCE.read_text())  # 1000 non-members: about 100 per class, some classes resolve 1% FPR
    assert figures.per_class(results, tmp_path / "f.png") == tmp_path / "f.png"
    for e in results["defenses"]:
        for sl in e["attacks"][e["primary_attack"]["name"]].get("slices", {}).values():
            sl["unresolved_fprs"] = ["0.01"]
    assert figures.per_class(results, tmp_path / "g.png") is None and not (tmp_path / "g.png").exists()
