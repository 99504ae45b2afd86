"""The four claims of the introduction, each turned into a verdict by code from results/.

Each ``claim_*`` function returns a `Verdict`: its label, one of the small vocabulary methods.md
defines ("supported", "contradicted", or "cannot be decided (<reason>)"; `VERDICTS`, `REASONS`,
`label`), the markdown the article prints (every number in it formatted from the results tables),
and the data and model it rests on. The rules themselves
(separation by Holm-corrected p of the exact sign-flip test, closeness by TOST within a margin, ...)
live in bookdata.py; the tests in actlab.stats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bookdata as bd
import numpy as np
import pandas as pd
from bookdata import join, name, pct, pp

# The verdict vocabulary, defined in methods.md (section "Verdicts": one definition per label);
# tests/test_book.py checks that the labels defined there are exactly `labels()`.
SUPPORTED, CONTRADICTED, UNDECIDED = "supported", "contradicted", "cannot be decided"
VERDICTS = (SUPPORTED, CONTRADICTED, UNDECIDED)
REASONS = (  # why a claim cannot be decided
    "not tested",  # the sweep lacks an activation, a measurement or a study the claim needs
    "not separated",  # the difference the claim needs is not shown at the 5% level
    "underpowered",  # with these seeds no comparison can be separated at all (smallest Holm p >= alpha)
    "neither shown",  # closeness: neither equivalence within the margin nor a difference beyond it
    "straddles the threshold",  # a 95% interval reaches across the rule's threshold
    "a part undecided",  # a claim of several parts: none contradicted, one at least undecided
)


def label(verdict: str, reason: str = "") -> str:
    """The printed label: 'supported', 'contradicted', or 'cannot be decided (<reason>)'."""
    if verdict not in VERDICTS or (verdict == UNDECIDED) != (reason in REASONS):
        raise ValueError(f"not a verdict of the article's vocabulary: {verdict!r} ({reason!r})")
    return f"{verdict} ({reason})" if verdict == UNDECIDED else verdict


def labels() -> list[str]:
    """Every label a verdict can have."""
    return [SUPPORTED, CONTRADICTED, *(label(UNDECIDED, r) for r in REASONS)]


def verdict_of(lab: str) -> str:
    """'cannot be decided (not tested)' -> 'cannot be decided'."""
    return lab.split(" (")[0]


@dataclass
class Verdict:
    claim: str
    label: str  # one of labels()
    text: str
    basis: str  # a sentence: which data the verdict rests on
    parts: list = field(default_factory=list)  # (sub-claim, label) pairs, for the summary table
    rests_on: str = ""  # the data and model, short, for the summary table

    def __post_init__(self):
        for lab in [self.label, *(lab for _, lab in self.parts)]:
            if lab not in labels():
                raise ValueError(f"claim ({self.claim}): {lab!r} is not a label of the article's vocabulary")


def rests_on(exp: str) -> str:
    """'MNIST-1D of 5,000 examples, 2×100 MLP': the data (with its size where the run recorded it and
    the name does not say it) and the model of one experiment (bookdata.experiment_name, the name the article uses)."""
    name_, n = bd.experiment_name(exp), bd.data_size(exp)
    data, _, arch = name_.partition(", ")
    if not n or not arch or f"{n:,}" in data:  # no size recorded, or the name says it already
        return name_
    return f"{data} of {n:,} examples, {arch}"


def combine(labs: list[str]) -> str:
    """A claim of several parts: supported if every part is, contradicted if any part is, else
    cannot be decided, for the reason its undecided parts share (else 'a part undecided')."""
    if all(lab == SUPPORTED for lab in labs):
        return SUPPORTED
    if CONTRADICTED in labs:
        return CONTRADICTED
    open_ = {lab for lab in labs if verdict_of(lab) == UNDECIDED}
    return open_.pop() if len(open_) == 1 else label(UNDECIDED, "a part undecided")


def _experiment_runs(exp: str) -> pd.DataFrame:
    return bd.of_experiment(bd.summary(), exp)


_stat = bd.stat


def _missing(acts_needed, present) -> list[str]:
    return [a for a in acts_needed if a not in present]


def design_limit(n: int, m: int) -> str:
    """A sentence when n seeds cannot separate anything after Holm over m comparisons ('' if they can):
    the exact sign-flip test's smallest p is 2 / 2^n, Holm's smallest adjusted p m times that."""
    from actlab.stats import min_sign_flip_p

    if n < 1 or m < 1:
        return ""
    floor = min(1.0, m * min_sign_flip_p(n))
    if floor < bd.ALPHA:
        return ""
    need = next(k for k in range(n, 64) if m * min_sign_flip_p(k) < bd.ALPHA)
    return (
        f" With {n} seeds no comparison can be separated at all: the exact test's smallest p is "
        f"{min_sign_flip_p(n):.4g}, {floor:.3g} after Holm over {m} comparisons; {need} seeds would be needed."
    )


# -----------------------------------------------------------------------------
# (a) GELU highest; ReLU ~ Leaky ReLU; PReLU slightly lower


def claim_a() -> Verdict:
    exp, basis = bd.experiment_for("mnist")
    runs = _experiment_runs(exp)
    acts = bd.activations(exp)
    means = {a: _stat(exp, a, "test_acc") for a in acts}
    parts, sentences = [], []

    # a1: GELU gives the highest accuracy
    untested = label(UNDECIDED, "not tested")
    if "gelu" not in acts:
        parts.append(("GELU highest", untested))
        sentences.append(f"*GELU highest:* **{untested}**: the sweep has no GELU runs.")
    else:
        others = [a for a in acts if a != "gelu"]
        comps = bd.paired_comparisons(runs, "gelu", others)
        above = [c for c in comps if c.outcome == "higher"]
        tied = [c for c in comps if c.outcome == "inseparable"]
        best = max(acts, key=lambda a: means[a]["mean"] if means[a] is not None else -np.inf)
        g = means["gelu"]
        gtxt = f"GELU's mean test accuracy is {pct(g['mean'])} ({bd.ci(g['ci_low'], g['ci_high'])})"
        if above:
            lab = CONTRADICTED
            detail = (
                f"{join(name(c.a) for c in above)} {'is' if len(above) == 1 else 'are'} higher than GELU: "
                + "; ".join(c.text() for c in above)
                + "."
            )
        elif not tied:
            lab = SUPPORTED
            detail = f"GELU is higher than each of the other {len(others)} activations (Holm p < {bd.ALPHA} in every paired comparison)."
        else:
            rank = (
                "the highest mean"
                if best == "gelu"
                else f"below the highest mean ({name(best)}, {pct(means[best]['mean'])})"
            )
            detail = (
                f"that is {rank}, but GELU cannot be separated from {join(name(c.a) for c in tied)} "
                f"(exact sign-flip tests, Holm-corrected over the {len(others)} comparisons with GELU, p ≥ {bd.ALPHA})"
            )
            by_name = {c.a: c for c in tied}
            closest = by_name.get(best) or min(tied, key=lambda c: abs(c.diff))
            detail += f"; e.g. {closest.text()}."
            limit = design_limit(min(c.n for c in comps), len(others))
            detail += limit
            lab = label(UNDECIDED, "underpowered" if limit else "not separated")
        parts.append(("GELU highest", lab))
        sentences.append(
            f"*GELU highest:* **{lab}**. {gtxt}; {detail}"
            if verdict_of(lab) == UNDECIDED
            else f"*GELU highest:* **{lab}**. {gtxt}. {detail}"
        )

    # a2: ReLU and Leaky ReLU are close
    miss = _missing(["relu", "leaky_relu"], acts)
    if miss:
        parts.append(("ReLU ≈ Leaky ReLU", untested))
        sentences.append(
            f"*ReLU and Leaky ReLU close:* **{untested}**: the sweep has no {join(name(a) for a in miss)} runs."
        )
    else:
        c = bd.vs_relu_comparison(exp, "leaky_relu")
        verdict = bd.close(c)
        lab = {"close": SUPPORTED, "different": CONTRADICTED, "unresolved": label(UNDECIDED, "neither shown")}[verdict]
        m = pp(bd.CLOSE_MARGIN, sign=False)
        tost = f"TOST equivalence test within ±{m}: {bd.pvalue(c.p_tost)}"
        why = {
            "close": f"the {tost}, so a difference of {m} or more is rejected",
            "different": f"the two are separated and the whole 95% CI of the difference lies beyond ±{m}",
            "unresolved": (f"the {tost}, so equivalence is not shown, and no difference beyond ±{m} is shown either"),
        }[verdict]
        parts.append(("ReLU ≈ Leaky ReLU", lab))
        sentences.append(f"*ReLU and Leaky ReLU close:* **{lab}**: {c.text()}; {why}.")

    # a3: PReLU is slightly lower (than ReLU)
    miss = _missing(["relu", "prelu"], acts)
    if miss:
        parts.append(("PReLU slightly lower", untested))
        sentences.append(
            f"*PReLU slightly lower:* **{untested}**: the sweep has no {join(name(a) for a in miss)} runs."
        )
    else:
        c = bd.vs_relu_comparison(exp, "prelu")
        why = {
            "lower": "PReLU is lower than ReLU",
            "higher": "PReLU is higher than ReLU, not lower",
            "inseparable": "PReLU cannot be separated from ReLU",
        }[c.outcome]
        limit = ""
        if c.outcome == "inseparable":
            pw = bd.power(exp)
            limit = design_limit(c.n, int(pw["family_size"])) if pw is not None else ""
        lab = {"lower": SUPPORTED, "higher": CONTRADICTED}.get(
            c.outcome, label(UNDECIDED, "underpowered" if limit else "not separated")
        )
        parts.append(("PReLU slightly lower", lab))
        sentences.append(f"*PReLU slightly lower:* **{lab}**: {why}; {c.text()}.{limit}")

    text = "\n\n".join(f"- {s}" for s in sentences)
    overall = combine([lab for _, lab in parts])
    return Verdict("a", overall, text, basis, parts, rests_on(exp))


# -----------------------------------------------------------------------------
# (b) Leaky ReLU, PReLU and ELU avoid dead units; ReLU does not


def _dead_at_init(exp: str) -> pd.Series:
    """Mean over seeds of the hidden-layer mean dead fraction at initialisation, per activation."""
    d = bd.curves("dead_units")
    d = bd.of_experiment(d, exp)
    d = d[(d["metric"] == "dead_fraction") & (d["epoch"] == 0)]
    return d.groupby(["activation", "seed"])["value"].mean().groupby("activation").mean()


def relu_dead_state(runs_dead: pd.Series, ci_low: float) -> str:
    """'none' (no run has a dead unit), 'some' (dead units in some runs, but the mean cannot be
    separated from 0: its 95% CI reaches 0), or 'clear' (the CI excludes 0, or every run has some)."""
    x = runs_dead.dropna()
    if x.empty or not x.gt(0).any():
        return "none"
    if (np.isfinite(ci_low) and ci_low > 0) or x.gt(0).all():
        return "clear"
    return "some"


NO_GRADIENT = "final_no_gradient_fraction"  # the headline measure of claim (b): comparable across families


def _probe_tol(exp: str) -> float:
    """The dead-unit tolerance the probes used (dead_units' `tol` rows)."""
    d = bd.curves("dead_units")
    d = bd.of_experiment(d, exp)
    return float(d.loc[d["metric"] == "tol", "value"].iloc[0])


def claim_b() -> Verdict:
    """Decided on units that pass no gradient (|f'| <= 1% of the activation's peak slope on every
    probe input), which every activation can have; the classic dead fraction (f' <= 1e-6), which
    Leaky ReLU and PReLU cannot have by construction and ELU only below z = -13.8, is reported beside
    it, and so is the low-variance fraction. tau-dormant is not used: units stuck on a flat part of
    ELU, SELU, tanh or sigmoid have |h| near 1 and are never dormant, so "fewer dormant units" would
    hold by definition."""
    exp = bd.experiments()[0]
    basis = f"This verdict rests on {bd.experiment_name(exp)}, the sweep's main experiment."
    runs = _experiment_runs(exp)
    acts = bd.activations(exp)
    r = _stat(exp, "relu", NO_GRADIENT)
    untested = label(UNDECIDED, "not tested")
    if "relu" not in acts or r is None:
        return Verdict(
            "b",
            untested,
            "The sweep has no ReLU runs with the dead-unit probe.",
            basis,
            [("dead units", untested)],
            rests_on(exp),
        )
    others = [a for a in ("leaky_relu", "prelu", "elu") if a in acts]
    missing = [a for a in ("leaky_relu", "prelu", "elu") if a not in acts]
    relu_runs = runs.loc[runs["activation"] == "relu", NO_GRADIENT]
    state = relu_dead_state(relu_runs, r["ci_low"])
    init = _dead_at_init(exp)
    at0 = f"; dead at initialisation {pct(init['relu'])}" if "relu" in init else ""
    measured = (
        f"{pct(r['mean'])} of ReLU's hidden units pass no gradient after training on average "
        f"({bd.ci(bd.clip01(r['ci_low']), bd.clip01(r['ci_high']))}; per run at most {pct(relu_runs.max())}{at0})"
    )
    # read from actlab/units.py, not imported: it imports torch (seconds of the page kernel's start-up)
    NO_GRADIENT_EPS = bd.module_constant("actlab.units", "NO_GRADIENT_EPS")  # noqa: N806
    LOW_VARIANCE_DELTA = bd.module_constant("actlab.units", "LOW_VARIANCE_DELTA")  # noqa: N806

    sentences = [
        (
            f"A unit counts here when it passes no gradient: |f′(z)| at most {pct(NO_GRADIENT_EPS, 0)} of its "
            "activation's largest slope on every probe input, which is ReLU's dead unit, a saturated tanh or "
            "sigmoid unit, an ELU unit stuck far below zero, or a Leaky ReLU unit negative on every input."
        ),
        {
            "clear": f"ReLU does have such units: {measured}.",
            "some": f"ReLU has few such units, not separable from none: {measured}.",
            "none": f"ReLU developed none in any run of this setting ({measured}).",
        }[state],
    ]
    zero, nonzero = [], []
    for a in others:
        mx = runs.loc[runs["activation"] == a, NO_GRADIENT].max()
        (zero if mx == 0 else nonzero).append((a, mx))
    if zero:
        sentences.append(f"{join(name(a) for a, _ in zero)}: none in any run.")
    for a, mx in nonzero:
        sentences.append(f"{name(a)}: up to {pct(mx)} of its units in a run.")
    # the classic definitions, for comparison with the literature: not comparable across families
    classic = {a: runs.loc[runs["activation"] == a, "final_dead_fraction"].mean() for a in ["relu", *others]}
    tol = _probe_tol(exp)
    sentences.append(
        f"By the classic definition (|f′| at most {tol:g} on every probe input), the dead fractions are "
        + "; ".join(f"{name(a)} {pct(v)}" for a, v in classic.items())
        + f"; Leaky ReLU and PReLU cannot have such units by construction and ELU only below "
        f"z = {bd.MINUS}{abs(np.log(tol)):.1f}, so that measure cannot decide the claim."
    )
    low = {a: runs.loc[runs["activation"] == a, "final_low_variance_fraction"].mean() for a in ["relu", *others]}
    sentences.append(
        f"Units whose output barely varies over the probe inputs (variance at most "
        f"{pct(LOW_VARIANCE_DELTA, 0)} of their layer's mean: no information passed on): "
        + "; ".join(f"{name(a)} {pct(v)}" for a, v in low.items())
        + "."
    )
    if missing:
        sentences.append(
            f"The sweep has no {join(name(a) for a in missing)} runs, so the claim is tested "
            f"only for {join([name(a) for a in others]) or 'ReLU'}."
        )
    if nonzero:  # a variant the claim names has such units: it does not avoid them
        lab = CONTRADICTED
    elif state == "none":
        lab = CONTRADICTED
        sentences.append(
            "The contrast the claim draws does not appear in this setting: ReLU avoided such units too "
            "(deep narrow networks: claim c)."
        )
    elif state == "some":
        lab = label(UNDECIDED, "not separated")
        sentences.append(
            "The contrast the claim draws cannot be decided here: ReLU's fraction cannot be "
            "separated from zero (deep narrow networks: claim c)."
        )
    elif missing:  # what was tested agrees, but not every variant the claim names was tested
        lab = untested
    else:
        lab = SUPPORTED
    return Verdict("b", lab, " ".join(sentences), basis, [("dead units", lab)], rests_on(exp))


# -----------------------------------------------------------------------------
# (c) deep narrow ReLU networks are often born dead


HE_INITS = ("he", "kaiming")


def born_dead_relu(init=HE_INITS) -> pd.DataFrame:
    b = bd.born_dead()
    return b[(b["activation"] == "relu") & (b["init"].isin(init))].sort_values(["width", "depth"])


def often_born_dead(ci_low: float) -> bool:
    """The rule of claim (c), as methods.md states it: networks are *often* born dead when the lower
    end of the 95% CI of their born-dead probability is at least ``bd.OFTEN``."""
    return bool(ci_low >= bd.OFTEN)


def rarely_born_dead(ci_high: float) -> bool:
    """The converse rule: networks are *not* often born dead when the upper end of the 95% CI of their
    born-dead probability is below ``bd.OFTEN``; between the two rules the verdict cannot be decided."""
    return bool(ci_high < bd.OFTEN)


def claim_c() -> Verdict:
    return born_dead_verdict(born_dead_relu(), bd.born_dead())


def born_dead_verdict(b: pd.DataFrame, table: pd.DataFrame) -> Verdict:
    """Claim (c) from `b` (ReLU, He init rows of born_dead.csv) and the whole `table` (for RAI)."""
    basis = "This verdict rests on the depth study (freshly initialised networks, no training)."
    if b.empty:
        untested = label(UNDECIDED, "not tested")
        return Verdict(
            "c",
            untested,
            "The depth study has no ReLU networks with He initialisation.",
            basis,
            [("born dead", untested)],
            "the depth study (no ReLU networks with He initialisation)",
        )
    widths = sorted(b["width"].unique())
    # "narrow" = the narrowest width of at least 2 (a width-1 chain is the exact case of the appendix, not a
    # network anyone trains); the narrowest there is when the study has no other
    w0, w1 = next((w for w in widths if w >= 2), widths[0]), widths[-1]
    d_max = b["depth"].max()
    narrow = b[b["width"] == w0]
    deep = narrow[narrow["depth"] == narrow["depth"].max()].iloc[0]
    shallow = narrow[narrow["depth"] == narrow["depth"].min()].iloc[0]
    wide_deep = b[(b["width"] == w1)]
    wide_deep = wide_deep[wide_deep["depth"] == wide_deep["depth"].max()].iloc[0]

    def p(row):
        return f"{pct(row['p_born_dead'])} ({bd.ci(row['ci_low'], row['ci_high'])}, {int(row['trials']):,} networks)"

    rises = deep["ci_low"] > shallow["ci_high"]
    often = often_born_dead(deep["ci_low"])
    # the first depth from which on the narrow nets are born dead "often" at every depth tested
    flags = [often_born_dead(v) for v in narrow["ci_low"]]  # narrow is sorted by depth
    often_rows = narrow.iloc[next((i for i in range(len(flags)) if all(flags[i:])), len(flags)) :]
    sentences = [
        f"At width {w0}, the probability that a He-initialised ReLU network is born dead (a constant function) "
        f"rises from {p(shallow)} at depth {int(shallow['depth'])} to {p(deep)} at depth {int(deep['depth'])}"
        + ("." if rises else ", an increase these trials cannot resolve."),
        f"At width {w1} and depth {int(wide_deep['depth'])} it is {p(wide_deep)}.",
    ]
    if not often_rows.empty:
        first = often_rows.iloc[0]
        sentences.append(
            f"From depth {int(first['depth'])} on, width-{w0} networks are born dead in at least "
            f"{pct(bd.OFTEN, 0)} of initialisations with 95% confidence."
        )
    rai = table
    rai = rai[
        (rai["activation"] == "relu") & (rai["init"] == "rai") & (rai["width"] == w0) & (rai["depth"] == deep["depth"])
    ]
    if not rai.empty:
        sentences.append(
            f"With the randomized asymmetric initialisation (RAI) of Lu et al., the same "
            f"width-{w0}, depth-{int(deep['depth'])} networks are born dead in {p(rai.iloc[0])}."
        )
    if often and rises:
        lab = SUPPORTED
    elif rarely_born_dead(deep["ci_high"]):
        lab = CONTRADICTED
        sentences.append(
            f"The deepest narrow networks tested (depth {int(d_max)}) are born dead in fewer than "
            f"{pct(bd.OFTEN, 0)} of initialisations with 95% confidence (the upper end of the interval is below it)."
        )
    elif often:
        lab = label(UNDECIDED, "not separated")
        sentences.append(
            f"The deepest narrow networks tested (depth {int(d_max)}) are born dead in at least {pct(bd.OFTEN, 0)} "
            "of initialisations with 95% confidence, but the rise with depth is not separated."
        )
    else:
        lab = label(UNDECIDED, "straddles the threshold")
        sentences.append(
            f"The 95% interval at the deepest narrow networks tested (depth {int(d_max)}) reaches across "
            f"{pct(bd.OFTEN, 0)}: these trials cannot say whether they are born dead in at least "
            f'{pct(bd.OFTEN, 0)} of initialisations (with 95% confidence, the rule of this article\'s "often").'
        )
    shape = f"widths {int(widths[0])}–{int(w1)}, depths {int(b['depth'].min())}–{int(d_max)}"
    where = f"the depth study: untrained ReLU networks, He initialisation, {shape}"
    return Verdict("c", lab, " ".join(sentences), basis, [("born dead", lab)], where)


# -----------------------------------------------------------------------------
# (d) smooth activations cost noticeably more compute


SMOOTH_FAMILIES = ("smooth", "exponential")  # actlab.activations families claim (d) calls smooth


def smooth_activations(acts=None) -> list[str]:
    """The activations claim (d) is about, in registry order: the `smooth` (GELU, SiLU, Mish,
    Softplus) and `exponential` (ELU, SELU) families of actlab.activations; only those in `acts` if given."""
    from actlab.activations import NAMES, spec

    smooth = [a for a in NAMES if spec(a).family in SMOOTH_FAMILIES]
    return smooth if acts is None else [a for a in smooth if a in set(acts)]


def cost_outcome(ci_low: float, ci_high: float, threshold: float = bd.NOTICEABLE) -> str:
    """One activation's time per epoch relative to ReLU's, by the 95% CI of the ratio: 'noticeably
    slower' (the whole CI above `threshold`), 'within' (the whole CI below it), else 'unresolved'."""
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return "unresolved"
    if ci_low > threshold:
        return "noticeably slower"
    if ci_high < threshold:
        return "within"
    return "unresolved"


def compute_verdict(timing: pd.DataFrame, threshold: float = bd.NOTICEABLE) -> tuple[str, dict[str, str]]:
    """Claim (d)'s label from the controlled timing table (one row per activation, ratios to ReLU),
    and each smooth activation's `cost_outcome`: supported when every smooth activation is
    noticeably slower than ReLU; contradicted when one at least is within the threshold and none
    straddles it; cannot be decided (straddles the threshold) when a CI straddles it, and (not
    tested) without ReLU or a smooth activation."""
    t = timing.drop_duplicates("activation").set_index("activation")
    smooth = smooth_activations(t.index)
    if bd.BASELINE not in t.index or not smooth or not (t["baseline"] == bd.BASELINE).all():
        return label(UNDECIDED, "not tested"), {}
    outcomes = {
        a: cost_outcome(float(t.at[a, "ratio_ci_low"]), float(t.at[a, "ratio_ci_high"]), threshold) for a in smooth
    }
    found = set(outcomes.values())
    if found == {"noticeably slower"}:
        return SUPPORTED, outcomes
    if "unresolved" in found:
        return label(UNDECIDED, "straddles the threshold"), outcomes
    return CONTRADICTED, outcomes


def timing_rests_on(row) -> str:
    """'scikit-learn digits (8x8), 2×128 MLP (a dedicated timing, ...)': what claim (d)'s timing trained."""
    arch = bd.names.experiment(row["dataset"], row["model"], depth=int(row["depth"]), width=int(row["width"]))
    return f"{arch} (a dedicated timing, random inputs of its shape)"


def claim_d() -> Verdict:
    tm = bd.timing()
    row = tm.iloc[0]
    basis = (
        f"This verdict rests on a dedicated timing, not on the training runs: one training epoch "
        f"(forward, backward, optimiser step; no validation, no probes) of {bd.timing_setting(row)}, for "
        f"every activation in one process, in {int(row['repeats'])} interleaved rounds after "
        f"{int(row['warmup'])} warm-up rounds, on {bd.timing_machine(row)}."
    )
    lab, outcomes = compute_verdict(tm)
    if not outcomes:
        text = "The timing lacks ReLU or any smooth activation."
        return Verdict("d", lab, text, basis, [("compute", lab)], timing_rests_on(row))
    t = tm.set_index("activation")
    base = t.loc[bd.BASELINE]
    noticeable = pct(bd.NOTICEABLE - 1, 0)
    word = {"noticeably slower": "noticeably slower", "within": f"within {noticeable}", "unresolved": "undecided"}
    rci = lambda a, p="": f"[{bd.ratio(t.at[a, f'{p}ratio_ci_low'])}, {bd.ratio(t.at[a, f'{p}ratio_ci_high'])}]"  # noqa: E731
    rows = [
        "| activation | one epoch, × ReLU [95% CI] | by the rule | the activation alone, × ReLU [95% CI] |",
        "|---|---:|---|---:|",
    ]
    rows += [
        f"| {name(a)} | {bd.ratio(t.at[a, 'ratio'])} {rci(a)} | {word[o]} "
        f"| {bd.ratio(t.at[a, 'act_ratio'])} {rci(a, 'act_')} |"
        for a, o in outcomes.items()
    ]
    head = (
        f"ReLU takes {bd.ms(base['s_per_epoch'])} per epoch ({bd.ci(base['ci_low'], base['ci_high'], bd.ms)}, "
        f"median over the rounds), and {1e6 * base['act_s']:.1f} µs for the activation alone (forward and backward "
        f"on one {int(row['batch_size'])} × {int(row['width'])} mini-batch of hidden units). The smooth "
        f"activations, relative to ReLU (median of the per-round ratios):"
    )
    slow = [a for a, o in outcomes.items() if o == "noticeably slower"]
    within = [a for a, o in outcomes.items() if o == "within"]
    open_ = [a for a, o in outcomes.items() if o == "unresolved"]
    sentences = [
        f"“Noticeably” means more than {noticeable} slower with the whole 95% CI above "
        f"{bd.ratio(bd.NOTICEABLE)}; an activation whose whole CI lies below it is within {noticeable}."
    ]
    if lab == SUPPORTED:
        sentences.append("Every smooth activation is noticeably slower than ReLU.")
    elif verdict_of(lab) == UNDECIDED:
        sentences.append(
            f"For {join(name(a) for a in open_)} the CI straddles the threshold, so these timings cannot decide the claim."
        )
    elif slow:
        sentences.append(
            f"Only {join(name(a) for a in slow)} {'is' if len(slow) == 1 else 'are'} noticeably slower; "
            f"{join(name(a) for a in within)} {'stays' if len(within) == 1 else 'stay'} within {noticeable} of ReLU."
        )
    else:
        sentences.append("None of the smooth activations is noticeably slower than ReLU.")
    if all(t.at[a, "ratio"] - 1 < t.at[a, "act_ratio"] - 1 for a in outcomes if t.at[a, "act_ratio"] > 1):
        sentences.append(
            "Within a training epoch these differences shrink: the rest of a step (matrix "
            "products, loss, optimiser) is the same for every activation."
        )
    # the training runs' own clocks, for context only
    c = bd.of_experiment(bd.compute(), bd.experiments()[0])
    c = c[c["activation"].isin(list(outcomes))]
    if not c.empty and "measured_per_model" in c and not c["measured_per_model"].all():
        sentences.append(
            f"The training runs' own clocks are not used either: their models were trained {int(c['shared_by'].max())} "
            "at a time as one computation, so a run's time is its job's divided, the same for every model of the job."
        )
    elif not c.empty:
        sentences.append(
            f"The training runs' own seconds per epoch (the results table) are not used: they include validation and "
            f"the probes, and were taken while other jobs shared the machine, with no control over what ran beside "
            f"them; their ratios to ReLU for these activations range from {bd.ratio(c['ratio_to_relu'].min())} to "
            f"{bd.ratio(c['ratio_to_relu'].max())}."
        )
    text = "\n\n".join([head, "\n".join(rows), " ".join(sentences)])
    return Verdict("d", lab, text, basis, [("compute", lab)], timing_rests_on(row))


def all_claims() -> dict[str, Verdict]:
    return {"a": claim_a(), "b": claim_b(), "c": claim_c(), "d": claim_d()}
