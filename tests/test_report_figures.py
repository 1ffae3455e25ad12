"""What the report's figures draw and what their captions say, checked on small synthetic
results (issue #39 section 2): unresolved TPRs hollow, captions that follow the data, the
attack figure 3 shows, the exposed members' scores, the summary's column order and the
dominated FRePo defenses."""
import copy
import json

import numpy as np
import pytest

from mi_defense.auditing.record import AuditRecord
from mi_defense.reporting import figures, images, render_report, tables
from tests.test_hardening_report import _attack, _entry, _summary, record


@pytest.fixture
def drawn(monkeypatch):
    """The figures' ``_save`` recorded: every (figure, caption) drawn, before it is closed."""
    out = []
    save = figures._save

    def keep(fig, path, caption):
        out.append((fig, caption))
        return save(fig, path, caption)

    monkeypatch.setattr(figures, "_save", keep)
    monkeypatch.setattr(images, "_save", keep)
    return out


def _defense(name, defense, params, acc=0.9, auc=0.6, unresolved=(), primary="threshold_loss", steps=None):
    e = _entry(name, defense)
    e.update(params=params, test_accuracy=acc, primary_attack=_summary(primary, auc),
             attacks={primary: dict(_attack(primary, auc), unresolved_fprs=list(unresolved))},
             metadata={"train_steps": steps} if steps else {})
    e["key"] = defense + "".join(f"_{k}={v}" for k, v in params.items())
    return e


def _results(*entries, n_nonmembers=100):
    rec = record()
    rec["defenses"] = list(entries)
    rec["split"]["n_nonmembers"] = n_nonmembers
    return rec


def _legend_texts(fig):
    return [t for ax in fig.axes for leg in [ax.get_legend()] if leg for t in leg.get_texts()]


# --- figure 2: the frontier -------------------------------------------------------------------

def test_unresolved_tprs_are_hollow_with_a_legend_entry_and_said_in_the_caption(tmp_path, drawn):
    rec = _results(_defense("none", "none", {}, unresolved=["0.001"]), _defense("subset:n=10", "subset", {"n": 10}))
    figures.frontier(rec, tmp_path / "f.png")
    fig, caption = drawn[-1]
    tpr_ax, auc_ax = fig.axes[:2]
    hollow = lambda ax: [ln for ln in ax.lines if len(ln.get_xdata()) and ln.get_markerfacecolor() == "white"]
    assert len(hollow(tpr_ax)) == 1 and hollow(auc_ax) == []  # only the unresolved TPR; an AUC is always measured
    assert any(t.get_text().startswith("unresolved") for t in _legend_texts(fig))
    assert "hollow markers: unresolved TPRs (0.1% FPR is below 1/100 non-members" in caption
    assert figures.caption(tmp_path / "f.png") == caption  # the caption travels in the PNG

    figures.frontier(_results(_defense("none", "none", {})), tmp_path / "g.png")
    fig, caption = drawn[-1]
    assert "hollow" not in caption and not any("unresolved" in t.get_text() for t in _legend_texts(fig))


@pytest.mark.parametrize("kinds, joined", [((("dpsgd", 8),), False), ((("dpsgd", 8), ("dpsgd", 1)), True),
                                           ((("dpsgd", 1), ("dpsgd-linear", 8)), False)])
def test_dp_sgd_points_are_joined_only_where_two_of_one_kind_exist(tmp_path, drawn, kinds, joined):
    rec = _results(_defense("none", "none", {}),
                   *[_defense(f"{d}:eps={e}", d, {"eps": e}, acc=0.5 + e / 100) for d, e in kinds])
    figures.frontier(rec, tmp_path / "f.png")
    fig, caption = drawn[-1]
    lines = [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "-" and len(ln.get_xdata()) >= 2]
    assert bool(lines) == joined and ("joins the DP-SGD points of dpsgd in order of epsilon" in caption) == joined
    assert "crosses" not in caption  # no defense released a set here


def test_the_frontier_caption_names_the_attack_on_a_released_set_only_when_there_is_one(tmp_path, drawn):
    fr = _defense("frepo:ipc=1", "frepo", {"ipc": 1})
    fr["release_attack"] = _summary("release_pixel", 0.55)
    fr["attacks"]["release_pixel"] = _attack("release_pixel", 0.55)
    figures.frontier(_results(_defense("none", "none", {}), fr), tmp_path / "f.png")
    assert "crosses: the attack on a released set (release_pixel)" in drawn[-1][1]


# --- figure 3: AUC over training steps --------------------------------------------------------

def test_figure_3_says_which_attack_it_shows_and_why_lines_stop_early(tmp_path, drawn):
    a = _defense("none", "none", {}, primary="lira_online_fixed", steps=250)
    a["auc_over_steps"] = [[100, 0.55], [200, 0.6]]
    b = _defense("subset:n=10", "subset", {"n": 10}, primary="lira_online_fixed", steps=1000)
    b["auc_over_steps"] = [[100, 0.5], [500, 0.52], [1000, 0.53]]
    c = _defense("dpsgd:eps=1", "dpsgd", {"eps": 1}, primary="lira_online_fixed", steps=20)
    c["auc_over_steps"] = []
    figures.auc_over_steps(_results(a, b, c), tmp_path / "f.png")
    fig, caption = drawn[-1]
    assert caption.startswith("AUC of the loss-threshold attack (threshold_loss), not of the primary attack "
                              "(lira_online_fixed)")
    assert "per-step scores only for the loss-threshold attack" in caption and "stop at different steps" in caption
    assert "no per-step record for dpsgd:eps=1 (trained 20 steps)" in caption
    assert [t.get_text() for t in _legend_texts(fig)] == ["none (250 steps)", "subset:n=10 (1000 steps)"]
    assert "loss threshold" in fig.axes[0].get_ylabel()

    a, b = _defense("none", "none", {}), _defense("subset:n=10", "subset", {"n": 10})  # primary: threshold_loss
    a["auc_over_steps"] = b["auc_over_steps"] = [[100, 0.5], [200, 0.6]]
    figures.auc_over_steps(_results(a, b), tmp_path / "g.png")
    fig, caption = drawn[-1]
    assert caption.startswith("AUC of the primary attack, threshold_loss,") and "stop at different" not in caption
    assert "primary attack" in fig.axes[0].get_ylabel() and "no per-step record" not in caption
    a["auc_over_steps"] = b["auc_over_steps"] = []
    assert figures.auc_over_steps(_results(a, b), tmp_path / "h.png") is None  # nothing recorded: no empty figure


def test_every_legend_is_at_least_9_points(tmp_path, drawn):
    rec = record()
    rec["defenses"].append(_defense("dpsgd:eps=1", "dpsgd", {"eps": 1}, unresolved=["0.001"]))
    figures.roc_curves(rec, tmp_path / "1.png")
    figures.frontier(rec, tmp_path / "2.png")
    figures.auc_over_steps(rec, tmp_path / "3.png")
    assert figures.per_class(rec, tmp_path / "5.png") is not None
    sizes = [t.get_fontsize() for fig, _ in drawn for t in _legend_texts(fig)]
    assert len(drawn) == 4 and sizes and min(sizes) >= 9


# --- figure 4: released images and exposed members --------------------------------------------

def _artifacts(folder, key, init_members=0, scores=None, shape=(8, 8, 1)):
    art = folder / "artifacts" / key
    art.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if init_members is not None:
        np.savez(art / "released.npz", images_uint8=rng.integers(0, 255, (4, *shape), dtype=np.uint8),
                 init_member_images=rng.integers(0, 255, (init_members, *shape), dtype=np.uint8))
    if scores is not None:
        np.savez(art / "vulnerable.npz", attack=np.array("release_pixel"), scores=np.asarray(scores, np.float64),
                 images=rng.integers(0, 255, (len(scores), *shape), dtype=np.uint8))


def _figure_texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title(loc="left") for ax in fig.axes]


def test_figure_4_captions_what_the_artifacts_show(tmp_path, drawn):
    real = _defense("frepo:ipc=2", "frepo", {"ipc": 2})
    noise = _defense("frepo:ipc=2,init=noise", "frepo", {"ipc": 2, "init": "noise"})
    noise["metadata"]["init"] = "noise"
    rec = _results(real, noise)
    _artifacts(tmp_path, real["key"], init_members=4, scores=[5.0, 3.0, 1.5, 0.2])
    _artifacts(tmp_path, noise["key"], init_members=0, scores=[0.0, 0.0, 0.0, 0.0])
    assert images.images(rec, tmp_path, tmp_path / "f4.png") is not None
    fig, caption = drawn[-1]
    assert caption.startswith("Synthetic images of frepo:ipc=2 next to the members they were initialised from")
    assert "synthetic images of frepo:ipc=2,init=noise (initialised from noise: no member is its start)" in caption
    assert "initialised from" in caption and caption.count("next to the members") == 1
    assert "for frepo:ipc=2, with each one's rank and attack score under it" in caption
    assert "for frepo:ipc=2,init=noise no member stands out" in caption
    texts = _figure_texts(fig)
    assert ["#1: 5", "#2: 3", "#3: 1.5", "#4: 0.2"] == [t for t in texts if t.startswith("#")]
    assert any(t.startswith("no member stands out: the 4 highest member scores under release_pixel are all 0")
               for t in texts)
    assert "frepo:ipc=2,init=noise: synthetic (initialised from noise)" in texts
    assert not any(t.startswith("frepo:ipc=2,init=noise: member it was") for t in texts)


def test_a_kept_figure_4_keeps_its_caption_when_the_artifacts_are_gone(tmp_path):
    import shutil

    fr = _defense("frepo:ipc=1", "frepo", {"ipc": 1})
    d = tmp_path / "r"
    d.mkdir()
    (d / "results.json").write_text(json.dumps(_results(_defense("none", "none", {}), fr)))
    _artifacts(d, fr["key"], init_members=2, scores=[2.0, 1.0])
    render_report(d)
    md = (d / "report.md").read_text()
    assert "Synthetic images of frepo:ipc=1 next to the members they were initialised from" in md
    shutil.rmtree(d / "artifacts")
    render_report(d)
    assert (d / "report.md").read_text() == md


# --- the summary table ------------------------------------------------------------------------

def test_the_summary_puts_privacy_first_and_scrolls_sideways_in_html(tmp_path):
    rec = record()
    rows = tables.summary_rows(AuditRecord.from_json(rec))
    assert rows[0][:6] == ["defense", "claimed ε", "audited ε ≥", "primary attack AUC [95% CI]",
                           "primary attack TPR@0.1%FPR [95% CI]", "test acc."]
    assert rows[0].index("acc. on members") == 6 and "recipe" in rows[0] and all(len(r) == len(rows[0]) for r in rows)
    rec["defenses"][1]["attacks"]["threshold_loss"]["unresolved_fprs"] = ["0.001"]
    # the declared FPR unresolved for one defense: that row's TPR is at 1% FPR
    rows = tables.summary_rows(AuditRecord.from_json(rec))
    assert rows[0][4] == "primary attack TPR at a resolved FPR [95% CI]"
    assert rows[1][4] == "1.00% [0.0, 2.0] at 0.1% FPR" and rows[2][4] == "5.00% [0.0, 10.0] at 1% FPR"
    for e in rec["defenses"]:
        e["attacks"]["threshold_loss"]["unresolved_fprs"] = ["0.001"]
    rows = tables.summary_rows(AuditRecord.from_json(rec))
    assert rows[0][4] == "primary attack TPR@1%FPR [95% CI]" and rows[0].count("TPR@1%FPR") == 0  # no repeated column

    d = tmp_path / "r"
    d.mkdir()
    (d / "results.json").write_text(json.dumps(record()))
    render_report(d)
    page = (d / "report.html").read_text()
    assert '<div class="table-box" id="summary"><table><thead><tr><th>defense</th><th>claimed ε</th>' in page
    assert ".table-box{overflow-x:auto" in page
    assert "| defense | claimed ε | audited ε ≥ | primary attack AUC [95% CI] |" in (d / "report.md").read_text()


# --- dominated FRePo defenses -----------------------------------------------------------------

def _frepo_vs_subset(frepo_acc=0.8, subset_acc=0.85, frepo_auc=0.52, subset_auc=0.53, n=20, claimed=None):
    # 2 classes: the same size is n=20
    fr = _defense("frepo:ipc=10", "frepo", {"ipc": 10}, acc=frepo_acc, auc=frepo_auc)
    fr["claimed_epsilon"] = claimed
    fr["metadata"]["distill_steps"] = 300
    return _results(_defense("none", "none", {}), fr,
                    _defense(f"subset:n={n}", "subset", {"n": n}, acc=subset_acc, auc=subset_auc))


def test_a_frepo_defense_beaten_by_a_real_subset_of_its_size_at_equal_leakage_is_dominated():
    rec = AuditRecord.from_json(_frepo_vs_subset())
    v = tables.verdict(rec.defenses[1], 0.9, 100, rec)
    assert v.count("dominated by subset:n=20") == 1
    assert "85.0% test accuracy against 80.0%" in v and "[0.470, 0.570] and [0.480, 0.580] overlap" in v
    assert "more outer steps than 300, or more images per class than 10" in v
    assert "dominated" not in tables.verdict(rec.defenses[1], 0.9, 100)  # without the whole results, no comparison
    for case in (dict(frepo_acc=0.86),             # FRePo more accurate
                 dict(frepo_auc=0.52, subset_auc=0.70),  # the subset leaks measurably more (intervals apart)
                 dict(n=10),                        # a subset of another size
                 dict(claimed=8.0)):                # DP-FRePo: a guarantee the subset lacks
        rec = AuditRecord.from_json(_frepo_vs_subset(**case))
        assert "dominated" not in tables.verdict(rec.defenses[1], 0.9, 100,
                                                 AuditRecord.from_json(copy.deepcopy(rec.to_json()))), case
    rec = AuditRecord.from_json(_frepo_vs_subset())
    assert all("dominated" not in tables.verdict(e, 0.9, 100, rec) for e in rec.defenses if e.defense != "frepo")
