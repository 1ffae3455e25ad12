"""The report's table of canary audits (``audit.canary_record``): each DP claim next to the
epsilon lower bound that a canary audit of it reached, and the deliberately broken
controls that show the audit can exceed a claim."""
from __future__ import annotations

from typing import List

from mi_defense.auditing.record import DefenseEntry
from mi_defense.auditing.canary_record import calibrated_for, key, load_canaries  # noqa: F401  (read through here)

NOTE = ("A canary audit plays the worst case the guarantee must survive. A bound below the claim is what a correct "
        "mechanism gives, and alone proves little; a row with a broken mechanism (noise or clipping removed inside the "
        "real code, the same epsilon still claimed) shows whether the same audit can exceed the claim: where broken "
        "rows are CAUGHT the audit has that power, where they are not it cannot tell a broken mechanism from a correct "
        "one at this size. One step: the mechanism's own update on neighbouring inputs, many trials, compared with the "
        "exact epsilon of that one Gaussian step, at the noise multiplier shown (calibrated for the canary run's own "
        "epsilon, record count and steps); a defense's verdict counts a one-step audit only at its own noise "
        "multiplier. One run: the whole defense trained once with canaries each included "
        "with probability 1/2 (Steinke, Nasr & Jagielski 2023); black box, it finds canaries only as far as the "
        "released model memorises them.")


def power(rows: List[dict]) -> List[str]:
    """Per kind of canary audit, how many of its broken controls it caught: whether its
    bounds below a claim can be read as evidence at all."""
    out = []
    for kind in ("one step", "one run"):
        broken = [r for r in rows if r.get("broken") and key(r)[1] == kind and r.get("claimed_epsilon") is not None]
        if not broken:
            continue
        caught = sum(r["audited_epsilon_lower_bound"] > r["claimed_epsilon"] for r in broken)
        out.append(f"{kind}: {caught} of {len(broken)} broken mechanisms caught"
                   + ("" if caught == len(broken)
                      else "; its bounds below a claim are not evidence that the mechanism works"))
    return out


def unit(r: dict) -> str:
    """What a one-step audit ran: an update step, or one of the release-once mechanism's releases."""
    return "release" if r.get("mechanism") == "dp-frepo-once" else "step"


def canary_rows(rows: List[dict]) -> List[list]:
    """The report's table: one line per canary audit, the header first."""
    out = [["audit", "mechanism", "broken", "size", "noise multiplier", "claimed epsilon", "audited epsilon >=",
            "verdict"]]
    for r in sorted(rows, key=lambda r: (str(key(r)[0]), key(r)[1], -(r.get("noise_multiplier") or 0),
                                         r.get("broken") or "")):
        one_run = "canaries" in r
        claim = r["claimed_epsilon"]
        size = (f"{r['canaries']} {r.get('kind', '')} canaries, {r.get('right')}/{2 * r.get('guesses', 0)} right"
                if one_run else f"{r.get('trials')} trials per input")
        what = (r.get("defense") if one_run
                else f"{r.get('mechanism')} {unit(r)} of {r['step_of']}" if r.get("step_of")
                else f"{r.get('mechanism')} {unit(r)} (run at epsilon {r.get('run_epsilon', 0):g})")
        verdict = ("no claim" if claim is None
                   else "CAUGHT" if r["audited_epsilon_lower_bound"] > claim else "below the claim")
        sigma = r.get("noise_multiplier")
        out.append(["one run" if one_run else "one step", what, r["broken"] or "-", size,
                    "-" if sigma is None else f"{sigma:.4g}", "-" if claim is None else f"{claim:.2f}",
                    f"{r['audited_epsilon_lower_bound']:.2f}", verdict])
    return out


def of_its_settings(entry: DefenseEntry) -> List[dict]:
    """The canary audits listed with ``entry`` that audit it at its own settings: one-step
    audits only at its noise multiplier (``canary_record.calibrated_for``; a results.json
    scored before that check may list others)."""
    sigma = (entry.metadata or {}).get("noise_multiplier")
    return [r for r in entry.canary_audits or [] if calibrated_for(r, sigma)]


def canary_sentence(entry: DefenseEntry) -> str:
    """The verdict's words on a DP defense's canary audits: each correct audit's bound against
    its claim, and what the same audit gave with the mechanism broken ("" when none recorded)."""
    rows = of_its_settings(entry)
    if not rows:
        return ""
    said = []
    for r in sorted(rows, key=lambda r: (key(r)[1], r.get("broken") or "")):
        what = f"one run with {r['canaries']} canaries" if "canaries" in r else f"one {r.get('mechanism')} {unit(r)}"
        broke = f", {r['broken']} removed" if r.get("broken") else ""
        claim = r["claimed_epsilon"]
        verdict = " (caught)" if claim is not None and r["audited_epsilon_lower_bound"] > claim else ""
        against = "no claim" if claim is None else f"{claim:.2f}"
        said.append(f"{what}{broke}: epsilon >= {r['audited_epsilon_lower_bound']:.2f} against {against}{verdict}")
    return "canary audits (worst-case inputs; a broken mechanism must exceed its claim) give " + "; ".join(said)
