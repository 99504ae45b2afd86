"""What the results page (paper/results.md) computes: its tables, and the sentences and numbers it
glues into its prose, each section's as one dict {glue key: value}. The page only glues them, so it
stays readable; the rules and the reading of results/ are bookdata's.

Every function reads the results through bookdata (which raises `MissingResult` for a table the
pipeline has not written) and returns text or MyST markdown (IPython `Markdown`) ready to glue.
"""

from __future__ import annotations

import os
from pathlib import Path

import bookdata as bd
import claims
import numpy as np
import pandas as pd
from IPython.display import Markdown

# -----------------------------------------------------------------------------
# tables


def mean_ci(r, clip: bool = False) -> str:
    """'94.3 [93.3, 95.4]' in percent; fractions' bounds clipped to [0, 100]; one value when there
    is no interval (one seed) or no spread (every seed the same, e.g. no dead unit at all)."""
    if r is None or not np.isfinite(r["mean"]):
        return "–"
    f = lambda x: bd.pct(bd.clip01(x) if clip else x, unit=False)  # noqa: E731
    if not (np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"])) or r["std"] == 0:
        return f(r["mean"])
    return f"{f(r['mean'])} [{f(r['ci_low'])}, {f(r['ci_high'])}]"


def results_table(exp: str) -> str:
    """The article's results tables of one experiment, as MyST markdown. Two tables, so that each fits
    the column: accuracy (per activation the test accuracy, the paired difference to ReLU with its Holm
    p, bold when separated, and milliseconds per epoch where measured per run), then the hidden units
    at the end of training (the final dead, dormant and saturated fractions and the cross-family
    fractions of units that pass no gradient and that carry no information: actlab.units)."""
    runs = bd.of_experiment(bd.summary(), exp)
    comp = bd.of_experiment(bd.compute(), exp).set_index("activation")
    has_sat = bool(runs["final_saturated_fraction"].notna().any())
    # ms / epoch only where each run's time was measured alone: a vectorised job's time / k is not
    per_model = bool(comp["measured_per_model"].all()) if "measured_per_model" in comp else True
    acc_head = ["activation", "test accuracy, %", "− ReLU, pp", "Holm p"] + (["ms / epoch"] if per_model else [])
    unit_head = ["activation", "dead", "dormant"] + (["saturated"] if has_sat else [])
    unit_head += ["no gradient", "no information"]
    acc_rows = ["| " + " | ".join(acc_head) + " |", "|" + "---|" * len(acc_head)]
    unit_rows = ["| " + " | ".join(unit_head) + " |", "|" + "---|" * len(unit_head)]
    stat = lambda act, metric, clip=True: mean_ci(bd.stat(exp, act, metric), clip)  # noqa: E731
    for act in bd.activations(exp):
        if act == bd.BASELINE:
            diff, p = "(baseline)", ""
        else:
            c = bd.vs_relu_comparison(exp, act)
            f = lambda x: bd.pp(x, unit=False)  # noqa: E731
            diff = f"{f(c.diff)} [{f(c.ci_low)}, {f(c.ci_high)}]"
            p = bd.pvalue(c.p_holm).replace("p = ", "").replace("p ", "")
            if c.outcome != "inseparable":
                diff, p = f"**{diff}**", f"**{p}**"
        n_div = int(runs.loc[runs["activation"] == act, "diverged"].astype(bool).sum())
        name = bd.name(act) + (f" ({n_div} diverged)" if n_div else "")
        cells = [name, stat(act, "test_acc", False), diff, p]
        cells += [bd.ms(comp["seconds_per_epoch"].get(act, np.nan)).replace(" ms", "")] if per_model else []
        acc_rows.append("| " + " | ".join(cells) + " |")
        cells = [name, stat(act, "final_dead_fraction"), stat(act, "final_dormant_fraction")]
        cells += [stat(act, "final_saturated_fraction")] if has_sat else []
        cells += [stat(act, m) for m in ("final_no_gradient_fraction", "final_low_variance_fraction")]
        unit_rows.append("| " + " | ".join(cells) + " |")
    units_title = "Hidden units at the end of training, % of the hidden units:"
    return "\n".join([*acc_rows, "", units_title, "", *unit_rows])


def timing_table() -> str:
    """The controlled timing as MyST markdown: per activation the median ms per epoch, its ratio to
    ReLU, and the activation alone (µs per forward + backward call) and its ratio, with 95% CIs."""
    from actlab.activations import NAMES

    t = bd.timing().set_index("activation")
    order = [a for a in NAMES if a in t.index] + sorted(set(t.index) - set(NAMES))
    rows = ["| activation | ms / epoch | × ReLU | activation alone, µs | × ReLU |", "|---|---:|---:|---:|---:|"]
    f = lambda v, lo, hi, fmt: f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"  # noqa: E731
    msf = lambda x: f"{1000 * x:.2f}"  # noqa: E731
    usf = lambda x: f"{1e6 * x:.1f}"  # noqa: E731
    rf = lambda x: f"{x:.2f}"  # noqa: E731
    for act in order:
        r = t.loc[act]
        rows.append(
            f"| {bd.name(act)} | {f(r['s_per_epoch'], r['ci_low'], r['ci_high'], msf)} "
            f"| {f(r['ratio'], r['ratio_ci_low'], r['ratio_ci_high'], rf)} "
            f"| {f(r['act_s'], r['act_ci_low'], r['act_ci_high'], usf)} "
            f"| {f(r['act_ratio'], r['act_ratio_ci_low'], r['act_ratio_ci_high'], rf)} |"
        )
    return "\n".join(rows)


# -----------------------------------------------------------------------------
# the page's sections: {glue key: value}

EXTRA_FIGURES = {
    "accuracy": "Final test accuracy per activation: seeds as dots, mean and 95% $t$-interval",
    "learning_curves": "Learning curves: training (dashed) and validation (solid) error in % per epoch, mean and 95% $t$-band",
    "dead_units": "Hidden units passing no gradient and low-variance units over training, per hidden layer",
    "grad_flow": "Gradient flow: RMS gradient per weight of each weight layer over the optimiser steps",
    "accuracy_vs_dead": "Test accuracy against the final fractions of units passing no gradient and of low-variance units, one point per run",
}


def overview(exp: str) -> dict:
    """The main experiment's name and size, its figures, the figure across the depths of its dataset
    and model, and the two global figures."""
    runs = bd.of_experiment(bd.summary(), exp)
    group = "{dataset}-{model}".format(**bd.experiment_info(exp))  # the figures across its depths
    out = {
        "exp_name": bd.experiment_name(exp),
        "n_seeds": f"{runs['seed'].nunique()}",
        "n_acts": f"{len(bd.activations(exp))}",
        "max_epochs": f"{int(runs['max_epochs'].max())}",
        "fig_across_depth": bd.figure("across_depth", group),
        "fig_activations": bd.figure("activations"),
        "fig_depth": bd.figure("depth"),
    }
    for fig in ("learning_curves", "accuracy", "dead_units", "grad_flow", "accuracy_vs_dead"):
        out[f"fig_{fig}"] = bd.figure(fig, exp)
    return out


def accuracy(exp: str) -> dict:
    """The results table, the best and worst activation, and which are separated from ReLU."""
    acts = bd.activations(exp)
    accs = {a: bd.stat(exp, a, "test_acc") for a in acts}
    ranked = sorted(
        (a for a in acts if accs[a] is not None and np.isfinite(accs[a]["mean"])), key=lambda a: -accs[a]["mean"]
    )
    v = bd.of_experiment(bd.vs_relu(), exp)
    v = v[v["metric"] == "test_acc"]
    sep = v[v["p_holm"] < bd.ALPHA]
    order = lambda names: [bd.name(a) for a in acts if a in set(names)]  # noqa: E731
    above = order(sep.loc[sep["mean_diff"] > 0, "activation"])
    below = order(sep.loc[sep["mean_diff"] < 0, "activation"])
    insep = order(v.loc[~(v["p_holm"] < bd.ALPHA), "activation"])
    parts = []
    if above:
        parts.append(f"{bd.join(above)} {'is' if len(above) == 1 else 'are'} more accurate than ReLU")
    if below:
        parts.append(f"{bd.join(below)} {'is' if len(below) == 1 else 'are'} less accurate than ReLU")
    if insep:
        parts.append(f"{bd.join(insep)} cannot be separated from ReLU")
    half = (v["ci_high"] - v["ci_low"]) / 2
    comp = bd.of_experiment(bd.compute(), exp)
    if "measured_per_model" not in comp or comp["measured_per_model"].all():
        time_note = (
            "ms / epoch is the training runs' own mean time per epoch, validation and probes included, "
            "measured while other jobs shared the machine (for the controlled timing see Compute below)."
        )
    else:
        time_note = (
            f"No time per run is shown: the runs were trained {int(comp['shared_by'].max())} at a time as one "
            "computation, so a run's time would be its job's divided, not a measurement (the controlled timing "
            "is under Compute below)."
        )
    return {
        "results_table": Markdown(results_table(exp)),
        "time_note": time_note,
        "best_act": bd.name(ranked[0]),
        "best_acc": bd.pct(accs[ranked[0]]["mean"]),
        "worst_act": bd.name(ranked[-1]),
        "worst_acc": bd.pct(accs[ranked[-1]]["mean"]),
        "vs_relu_sentence": "; ".join(parts) if parts else "no activation was compared with ReLU",
        "ci_halfwidth": (f"{bd.pp(half.min(), sign=False)} to {bd.pp(half.max(), sign=False)}" if len(half) else "n/a"),
    }


def timing() -> dict:
    """The controlled timing of claim (d): its table and what it timed, on which machine."""
    tm = bd.timing().iloc[0]
    return {
        "timing_table": Markdown(timing_table()),
        "timing_setting": bd.timing_setting(tm),
        "timing_machine": bd.timing_machine(tm),
        "timing_repeats": f"{int(tm['repeats'])}",
    }


def dead_units(exp: str) -> dict:
    """ReLU's dead fraction over training, which activations end with dead or saturated units, and
    how the dead fraction and the accuracy relate across runs (figure accuracy_vs_dead)."""
    acts = bd.activations(exp)
    runs = bd.of_experiment(bd.summary(), exp)
    d = bd.of_experiment(bd.curves("dead_units"), exp)
    dead = d[d["metric"] == "dead_fraction"].groupby(["activation", "seed", "epoch"])["value"].mean()
    out = {}
    if "relu" in dead.index.get_level_values(0):
        per_epoch = dead.loc["relu"].groupby("epoch").mean()
        out.update(
            relu_dead_init=bd.pct(per_epoch.iloc[0]),
            relu_dead_final=bd.pct(per_epoch.iloc[-1]),
            relu_dead_peak=bd.pct(per_epoch.max()),
            relu_dead_peak_epoch=f"{int(per_epoch.idxmax())}",
        )
    else:
        out.update(
            dict.fromkeys(("relu_dead_init", "relu_dead_final", "relu_dead_peak", "relu_dead_peak_epoch"), "n/a")
        )
    final_dead = runs.groupby("activation")["final_dead_fraction"].mean()
    with_dead = [bd.name(a) for a in acts if final_dead.get(a, 0) > 0]
    out["acts_with_dead"] = bd.join(with_dead) if with_dead else "none of the activations"
    sat = runs.groupby("activation")["final_saturated_fraction"].mean().dropna()
    out["saturated_sentence"] = (
        "; ".join(f"{bd.name(a)} {bd.pct(sat[a])}" for a in acts if a in sat) if len(sat) else "not measured"
    )
    out["dead_acc_corr"] = dead_accuracy_correlation(runs, acts)
    return out


def dead_accuracy_correlation(runs: pd.DataFrame, acts, column: str = "final_no_gradient_fraction") -> str:
    """Spearman correlation of the final no-gradient fraction with test accuracy *within* each
    activation, across its seeds. Pooling the runs of all activations would mostly correlate the
    activations' differences (most of which have no such unit at all), not the effect of dead units on
    a model; an activation whose runs do not vary in the measure is named, not correlated."""
    from scipy import stats as sst

    parts, flat = [], []
    for a in acts:
        r = runs.loc[runs["activation"] == a, ["test_acc", column]].dropna()
        if len(r) < 3 or r[column].nunique() < 2 or r["test_acc"].nunique() < 2:
            flat.append(bd.name(a))
            continue
        rho, p = sst.spearmanr(r[column], r["test_acc"])
        rho_ = f"{rho:.2f}".replace("-", bd.MINUS)  # a typographic minus, as every other number
        parts.append(f"{bd.name(a)} ρ = {rho_} ({bd.pvalue(p)}, {len(r)} runs)")
    text = "; ".join(parts) if parts else "no activation's runs vary in it"
    if flat:
        text += f" (not computable for {bd.join(flat)}: the same fraction in every run)"
    return text


def gradient_flow(exp: str) -> dict:
    """The first-to-last layer gradient-norm ratio at the first and the last step, and the median
    update-to-weight ratio."""
    g = bd.of_experiment(bd.curves("grad_flow"), exp)
    ratio = g[g["metric"] == "grad_norm_first_over_last"]
    step = ratio.groupby(["activation", "seed"])["step"]
    med_last = ratio[ratio["step"] == step.transform("max")].groupby("activation")["value"].median()
    med_first = ratio[ratio["step"] == step.transform("min")].groupby("activation")["value"].median()
    out = {"gf_ratio_range": "n/a", "gf_ratio_init_range": "n/a", "update_ratio_median": Markdown("n/a")}
    if len(med_last):
        out["gf_ratio_range"] = (
            f"{med_last.min():.2g} ({bd.name(med_last.idxmin())}) to {med_last.max():.2g} ({bd.name(med_last.idxmax())})"
        )
        out["gf_ratio_init_range"] = f"{med_first.min():.2g} to {med_first.max():.2g}"
    upd = g[g["metric"] == "update_ratio"]
    if len(upd):
        mant, exp = f"{upd['value'].median():.1e}".split("e")
        out["update_ratio_median"] = Markdown(f"${mant} \\times 10^{{{int(exp)}}}$")
    return out


def _theory_band(r) -> tuple[float, float]:
    """(low, high) of the theory for one born_dead.csv row: the exact value at width 1, else the bounds."""
    exact = r.get("theory_exact", np.nan)
    return (exact, exact) if np.isfinite(exact) else (r["theory_low"], r["theory_high"])


def theory_table(he: pd.DataFrame) -> str:
    """Measured born-dead % per (width, depth) with the theoretical band in parentheses; bold where
    the measured 95% interval misses the band."""
    depths = sorted(he["depth"].unique())
    rows = ["| width | " + " | ".join(f"depth {int(d)}" for d in depths) + " |", "|---|" + "---|" * len(depths)]
    for w, gr in he.groupby("width"):
        cells = []
        for d in depths:
            r = gr[gr["depth"] == d]
            if r.empty:
                cells.append("–")
                continue
            r = r.iloc[0]
            lo, hi = _theory_band(r)
            band = bd.pct(lo, 0, unit=False) if lo == hi else f"{bd.pct(lo, 0, unit=False)}–{bd.pct(hi, 0, unit=False)}"
            cell = f"{bd.pct(r['p_born_dead'], 0, unit=False)} ({band})"
            cells.append(f"**{cell}**" if r["ci_high"] < lo or r["ci_low"] > hi else cell)
        rows.append(f"| {int(w)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def born_dead() -> dict:
    """The depth study against the theory: the trend with depth, the deepest cells, the table of
    measured against theoretical probabilities, the controls and RAI."""
    b = bd.born_dead()
    he = claims.born_dead_relu()
    keys = ("theory_cells", "depth_trend", "deepest_by_width", "deepest_depth")
    out = {"depth_trials_fig": f"{int(he['trials'].max()):,}" if len(he) else "n/a", **dict.fromkeys(keys, "n/a")}
    has_theory = "theory_low" in he
    if len(he):
        if has_theory:
            exact = he["theory_exact"].notna() if "theory_exact" in he else pd.Series(False, index=he.index)
            lo_t = he["theory_exact"].where(exact, he["theory_low"])
            hi_t = he["theory_exact"].where(exact, he["theory_high"])
            out["theory_cells"] = f"{int(((he['ci_low'] <= hi_t) & (he['ci_high'] >= lo_t)).sum())} of {len(he)}"
        mono_depth = all(
            np.all(np.diff(gr.sort_values("depth")["p_born_dead"].to_numpy()) >= -1e-12)
            or gr["ci_low"].iloc[-1] > gr["ci_high"].iloc[0]
            for _, gr in he.groupby("width")
        )
        deepest = he[he["depth"] == he["depth"].max()].sort_values("width")
        out["depth_trend"] = (
            "rises with depth at every width" if mono_depth else "does not rise monotonically with depth at every width"
        )
        out["deepest_by_width"] = "; ".join(
            f"width {int(r.width)}: {bd.pct(r.p_born_dead)}" for r in deepest.itertuples()
        )
        out["deepest_depth"] = f"{int(he['depth'].max())}"
    out["theory_table"] = Markdown(
        theory_table(he)
        if len(he) and {"theory_low", "theory_high"} <= set(he.columns)
        else "*The depth study recorded no theoretical values.*"
    )
    never = b[b["activation"] != "relu"].groupby("activation")["born_dead"].sum()
    out["never_dead"] = bd.join(bd.name(a) for a, k in never.items() if k == 0) or "none"
    rai = b[(b["activation"] == "relu") & (b["init"] == "rai")]
    if len(rai) and len(he):
        m = he.merge(rai, on=["depth", "width"], suffixes=("_he", "_rai"))
        lower = int((m["ci_high_rai"] < m["ci_low_he"]).sum())
        out["rai_sentence"] = (
            f"RAI lowers the born-dead probability, with non-overlapping 95% intervals, in {lower} of {len(m)} cells"
        )
    else:
        out["rai_sentence"] = "RAI was not part of this depth study"
    return out


def collapse_table(col: pd.DataFrame, has_net: bool) -> str:
    rows = [
        "| activation | init | width × depth | trained nets | born dead (ended constant) | collapsed to a constant [95% CI] "
        "| median final MSE: collapsed / the others |",
        "|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "–" if pd.isna(v) else f"{v:.3g}"  # noqa: E731
    for r in col.itertuples():
        ended = f" ({int(r.born_dead_ended_constant)})" if has_net else ""
        mse = (
            f"{fmt(r.median_final_loss_collapsed)} / {fmt(r.median_final_loss_live)}"
            if has_net
            else f"{r.median_final_loss:.3f} (all)"
        )
        rows.append(
            f"| {bd.name(r.activation)} | {bd.INITS.get(r.init, r.init)} | {int(r.width)} × {int(r.depth)} | {int(r.seeds)} | "
            f"{int(r.born_dead)}{ended} | {bd.pct(r.p_collapsed, 0)} [{bd.pct(r.ci_low, 0)}, {bd.pct(r.ci_high, 0)}] | {mse} |"
        )
    return "\n".join(rows)


def collapse() -> dict:
    """The collapse experiment: its table, and whether every born-dead network ended constant."""
    col = bd.collapse() if bd.exists("depth/collapse.csv") else pd.DataFrame()
    late = ("collapsed_loss", "live_loss", "plateau_sentence")
    if not len(col):
        return {
            "collapse_table": Markdown("*The collapse experiment was not part of this sweep.*"),
            "collapse_steps": "n/a",
            "constant_loss": "n/a",
            "collapse_sentence": "not measured",
            **dict.fromkeys(late, "not measured"),
        }
    has_net = "born_dead_ended_constant" in col  # tables written before the per-network check lack it
    lo, hi = int(col["steps"].min()), int(col["steps"].max())
    out = {
        "collapse_table": Markdown(collapse_table(col, has_net)),
        "collapse_steps": f"{lo:,}" if lo == hi else f"{lo:,} to {hi:,}",
        "constant_loss": f"{col['constant_fit_loss'].iloc[0]:.3f}",
    }
    ended_all = bool((col["born_dead_ended_constant"] == col["born_dead"]).all()) if has_net else None
    extra = col["collapsed"] - (col["born_dead_ended_constant"] if has_net else col["born_dead"])
    n_dead = int(col["born_dead"].sum())
    if ended_all is False:
        first = (
            f"{int(n_dead - col['born_dead_ended_constant'].sum())} of the {n_dead} born-dead networks did not "
            f"end constant, against the theory (collapse_nets.csv lists them)"
        )
    elif ended_all:
        first = f"every one of the {n_dead} born-dead networks ended constant, checked network by network"
    else:
        first = "the collapse table predates the per-network check"
    out["collapse_sentence"] = first + (
        f", and {int(extra.sum())} networks that were alive at initialisation collapsed during training"
        if extra.sum() > 0
        else ""
    )
    if not has_net:
        return {**out, **dict.fromkeys(late, "not recorded")}
    nets = bd.table("depth/collapse_nets.csv") if bd.exists("depth/collapse_nets.csv") else None
    if nets is not None:  # medians over all networks, not medians of cell medians
        cl, lv = nets.loc[nets["ended_constant"], "final_loss"], nets.loc[~nets["ended_constant"], "final_loss"]
    else:
        cl, lv = col["median_final_loss_collapsed"], col["median_final_loss_live"]
    out["collapsed_loss"] = f"{cl.median():.3f}" if cl.notna().any() else "n/a (none collapsed)"
    out["live_loss"] = f"{lv.median():.2g}" if lv.notna().any() else "n/a"
    n, k = int(col["seeds"].sum()), int(col["plateaued"].sum())
    moving = nets[~nets["plateau"]] if nets is not None else None
    tail = (
        ""
        if k == n or moving is None
        else f"; of the {n - k} still improving at the step cap, {int(moving['ended_constant'].sum())} had ended constant"
    )
    out["plateau_sentence"] = f"{k} of the {n} networks were on a plateau when training stopped{tail}"
    return out


def other_experiments(exps: list[str]) -> dict:
    """The sweep's experiments after the first: per experiment a heading, its set-up, its results
    table and its five figures, and after the last experiment of a dataset and model that is not the
    main experiment's the figure across their depths (the main one's is in the page), as one MyST block."""
    extra = []
    group = lambda e: "{dataset}-{model}".format(**bd.experiment_info(e))  # noqa: E731  (figure dirs)
    groups = [group(e) for e in exps]
    shown = {group(bd.experiments()[0])}
    for i, e_ in enumerate(exps):
        title = bd.experiment_name(e_)
        cfg = bd.run_config(e_)
        extra += [
            f":::{{rubric}} {title}\n:::\n",
            f"{cfg['model']['depth']} hidden layers × {cfg['model']['width']}, {bd.optimizer_name(cfg['optimizer']['name'])} "
            f"(lr {cfg['optimizer']['lr']:g}), {cfg['trainer']['max_epochs']} epochs.\n",
            results_table(e_),
            f"\n*Mean over seeds [95% $t$-interval], {title}; columns as in the table above.*\n",
        ]
        for fig, cap in EXTRA_FIGURES.items():
            rel = Path(os.path.relpath(bd.figure_path(fig, e_), Path.cwd())).as_posix()
            extra.append(
                f":::{{figure}} {rel}\n:name: fig-{fig}-{e_}\n:width: 100%\n\n"
                f"{cap}; {title}. Made by `workflow/scripts/fig_{fig}.py`.\n:::\n"
            )
        if groups[i] not in shown and groups[i] not in groups[i + 1 :]:
            shown.add(groups[i])
            info = bd.experiment_info(e_)
            rel = Path(os.path.relpath(bd.figure_path("across_depth", groups[i]), Path.cwd())).as_posix()
            extra.append(
                f":::{{figure}} {rel}\n:name: fig-across_depth-{groups[i]}\n:width: 100%\n\n"
                f"The study across network depth as above; {bd.names.experiment(info['dataset'], info['model'])}. "
                "Made by `workflow/scripts/fig_across_depth.py`.\n:::\n"
            )
    if extra:
        what = "experiment" if len(exps) == 1 else "experiments"
        extra.insert(
            0,
            f"## Other {what} of the sweep\n\nThe same table and figures for the sweep's other {what} "
            f"(the verdicts of the introduction rest on the experiments they name).\n",
        )
    return {"n_extra": f"{len(exps)}", "extra_experiments": Markdown("\n".join(extra))}
