"""Write a study's results: CSV tables, PNG figures, and a Markdown + HTML report.

:func:`write_report` takes a :class:`~synthcontrol.study.StudyResult` and writes
into one folder:

``results.csv``
    One row per analysis, treated unit, outcome, pool and estimator (see
    :attr:`StudyResult.results <synthcontrol.study.StudyResult.results>`).
    ``treated_code`` holds the unit identifier: the 6-digit city code for the city
    panel, the unit name for studies whose units are names (California).
``weights.csv``
    Donor weights of every fit, zeros included (``donor_code`` likewise).
``paths.csv``
    Observed and synthetic outcome and gap, every fit and period.
``report.md``, ``report.html`` and ``*.png``
    The report and its figures.

The report text is generated from the numbers: what was estimated, on which data
and donors, the results with their pre-period fit quality and p-values, and a
plain reading that says when a fit is poor and when a gap cannot be told apart
from the placebo distribution.
"""

from __future__ import annotations

import html
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Hashable, Iterable, Sequence

import numpy as np
import pandas as pd

from .study import StudyResult, TaskResult

__all__ = ["write_report", "ALPHA"]

logger = logging.getLogger("synthcontrol.report")

#: Level at which the report calls a placebo p-value small.
ALPHA = 0.1


# -- document blocks ---------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame  # already formatted as strings


@dataclass(frozen=True)
class Figure:
    file: str
    caption: str


Block = Heading | Paragraph | Bullets | Table | Figure


def render_markdown(blocks: Iterable[Block]) -> str:
    """The blocks as Markdown."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            parts.append(_markdown_table(block.frame))
        else:
            parts.append(f"![{block.caption}]({block.file})\n\n*{block.caption}*")
    return "\n\n".join(parts) + "\n"


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def render_html(blocks: Iterable[Block], title: str) -> str:
    """The blocks as a standalone HTML page."""
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            body.append(block.frame.to_html(index=False, escape=True, border=0))
        else:
            body.append(f'<figure><img src="{html.escape(block.file)}" alt="{html.escape(block.caption)}">'
                        f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;margin:1em 0}td,th{padding:2px 8px;border-bottom:1px solid #ddd;"
             "text-align:right}img{max-width:100%}figcaption{font-style:italic}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# -- entry point -------------------------------------------------------------------------


def write_report(study: StudyResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write the CSV files, figures and the Markdown and HTML report into ``out``.

    Parameters
    ----------
    study : StudyResult
    out : path
        Output folder (created if missing; files of the same names are replaced).

    Returns
    -------
    dict
        File kind -> path written (``results``, ``weights``, ``paths``, ``markdown``,
        ``html``, and one entry per figure).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {
        "results": out / "results.csv",
        "weights": out / "weights.csv",
        "paths": out / "paths.csv",
    }
    study.results.to_csv(written["results"], index=False)
    study.weights.to_csv(written["weights"], index=False)
    study.paths.to_csv(written["paths"], index=False)
    figures = write_figures(study, out)
    blocks = report_blocks(study, figures)
    written["markdown"] = out / "report.md"
    written["html"] = out / "report.html"
    written["markdown"].write_text(render_markdown(blocks), encoding="utf-8")
    written["html"].write_text(render_html(blocks, study.config.title), encoding="utf-8")
    written.update({f"figure:{name}": out / name for name in figures})
    logger.info("report written to %s (%d figures)", out, len(figures))
    return written


# -- formatting --------------------------------------------------------------------------


def _num(x: float, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def _p(x: float) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.2f}"


def _slug(value: object) -> str:
    return "".join(c if c.isalnum() else "_" for c in str(value)).strip("_").lower()


def _years(periods: Sequence) -> str:
    return f"{periods[0]}" if len(periods) == 1 else f"{periods[0]}-{periods[-1]}"


def _main(study: StudyResult) -> pd.DataFrame:
    results = study.results
    return results[(results.analysis == "main") & (results.estimator == "classic")]


def _headline_column(study: StudyResult) -> str:
    return next(o.column for o in study.config.outcomes.values() if o.headline)


# -- figures -----------------------------------------------------------------------------


def write_figures(study: StudyResult, out: Path) -> dict[str, str]:
    """Write the PNG figures (matplotlib, Agg backend); returns file name -> caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    for name, caption, draw in _figure_plan(study):
        fig = draw(plt)
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        figures[name] = caption
    return figures


def _figure_plan(study: StudyResult) -> list:
    config = study.config
    headline = _headline_column(study)
    tasks = [tr for tr in study.task_results
             if tr.task.is_headline and tr.task.estimator == "classic"]
    plan = []
    for treated in config.analyses[0].treated:
        name = config.unit_name(treated)
        plan.append((f"headline_{_slug(treated)}.png",
                     f"{name}: observed and synthetic {headline}, and their gap, by donor pool",
                     lambda plt, t=treated: _draw_paths(plt, tasks, t, config)))
        if all("placebo" in tr.inference for tr in tasks):
            plan.append((f"placebo_{_slug(treated)}.png",
                         f"{name}: gap in {headline} (black) among the placebo gaps of the donors (grey)",
                         lambda plt, t=treated: _draw_placebos(plt, tasks, t, config)))
    plan.append(("effects.png", "Average post-period effect of every main estimate; filled markers: "
                 f"placebo p <= {ALPHA}, crosses: poor pre-period fit",
                 lambda plt: _draw_effects(plt, _main(study), config)))
    for (treated, pool), curve in study.curves.items():
        plan.append((f"speccurve_{_slug(treated)}_{_slug(pool)}.png",
                     f"{config.unit_name(treated)}, {pool} pool: specification curve of {headline}",
                     lambda plt, c=curve: _draw_curve(plt, c)))
    return plan


def _draw_paths(plt, tasks: list[TaskResult], treated: Hashable, config) -> object:
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 3.2 * len(tasks)), squeeze=False)
    for row, tr in zip(axes, tasks):
        result = tr.fits[treated]
        result.plot_path(ax=row[0])
        result.plot_gap(ax=row[1])
        row[0].legend([config.unit_name(treated), "synthetic"], frameon=False)
        row[0].set_title(f"{config.unit_name(treated)} vs synthetic, {tr.task.pool} pool", fontsize="medium")
        row[1].set_title(f"gap, {tr.task.pool} pool", fontsize="medium")
    _integer_years(fig)
    fig.tight_layout()
    return fig


def _integer_years(fig) -> None:
    """Whole periods on every x axis (years, not 2007.5)."""
    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _draw_placebos(plt, tasks: list[TaskResult], treated: Hashable, config) -> object:
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.4), squeeze=False)
    for ax, tr in zip(axes[0], tasks):
        placebo = tr.inference["placebo"][treated]
        placebo.plot_gaps(ax=ax)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [config.unit_name(treated), *labels[1:]], frameon=False)
        ax.set_title(f"{tr.task.pool} pool: p = {_p(placebo.p_value)}", fontsize="medium")
    _integer_years(fig)
    fig.tight_layout()
    return fig


def _draw_effects(plt, main: pd.DataFrame, config) -> object:
    outcomes = list(dict.fromkeys(main.outcome))
    fig, axes = plt.subplots(1, len(outcomes), figsize=(3.2 * len(outcomes), 0.5 * main.treated.nunique() + 2.2),
                             squeeze=False)
    markers = dict(zip(dict.fromkeys(main.pool), "os^Dv"))
    names = list(dict.fromkeys(main.treated))
    for ax, outcome in zip(axes[0], outcomes):
        rows = main[main.outcome == outcome]
        for row in rows.itertuples():
            y = names.index(row.treated) + 0.15 * list(markers).index(row.pool)
            filled = np.isfinite(row.p_value) and row.p_value <= ALPHA
            marker = "x" if row.fit_quality == "poor" else markers[row.pool]
            ax.scatter(row.effect, y, marker=marker, color="tab:blue",
                       facecolors="tab:blue" if filled or marker == "x" else "none")
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set_yticks(range(len(names)), names if ax is axes[0][0] else [""] * len(names))
        ax.set_title(outcome, fontsize="small")
    handles = [plt.Line2D([], [], marker=m, linestyle="", color="tab:blue", markerfacecolor="none", label=p)
               for p, m in markers.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _draw_curve(plt, curve) -> object:
    ax = curve.plot(alpha=ALPHA)
    return ax.figure


# -- report text -------------------------------------------------------------------------


def report_blocks(study: StudyResult, figures: dict[str, str]) -> list[Block]:
    """The report as a list of blocks, generated from the study's numbers."""
    blocks: list[Block] = [Heading(1, study.config.title)]
    for section in (_intro, _data_section, _donor_section, _results_section, _reading_section,
                    _robustness_section, _sensitivity_section, _estimator_section, _curve_section,
                    _figure_section, _notes_section):
        blocks += section(study, figures)
    return blocks


def _intro(study: StudyResult, figures: dict) -> list[Block]:
    config = study.config
    main = config.analyses[0]
    treated = ", ".join(_named(config, t) for t in main.treated)
    window = f"{main.fit_window[0]}-{main.fit_window[1]}" if main.fit_window else "every year before treatment"
    blocks: list[Block] = [Paragraph(config.description.strip())] if config.description else []
    blocks += [
        Heading(2, "What was estimated"),
        Paragraph(
            f"Synthetic control estimates for {treated}, treated from {main.treatment_start}. "
            f"For each outcome, donor pool and estimator, donor weights are chosen so that a weighted "
            f"average of untreated units reproduces the treated unit's predictors; the predictor weights "
            f"are chosen to minimise the outcome gap over the fit window {window}. The effect is the "
            f"average gap between the observed outcome and its synthetic control from {main.treatment_start} "
            f"on. Estimators: {', '.join(config.estimators)}."
        ),
        Table(_outcome_table(config)),
    ]
    return blocks


def _named(config, unit: Hashable) -> str:
    name = config.unit_name(unit)
    return name if name == str(unit) else f"{name} ({unit})"


def _outcome_table(config) -> pd.DataFrame:
    rows = [
        {"outcome": o.column, "meaning": o.label, "headline": "yes" if o.headline else "",
         "predictors": ", ".join(p.label for p in o.predictors) or "the outcome in every fit-window year",
         "boundary-change donors": "excluded" if o.exclude_flagged else "kept"}
        for o in config.outcomes.values()
    ]
    frame = pd.DataFrame(rows)
    return frame if config.flag else frame.drop(columns="boundary-change donors")


def _data_section(study: StudyResult, figures: dict) -> list[Block]:
    config = study.config
    data, time = config.data, config.time
    items = [f"Data: {config.data_name}" + (f", documented in {config.datasheet}." if config.datasheet else ".")]
    items.append(f"{data[config.unit].nunique()} units, {time} {data[time].min()}-{data[time].max()}.")
    for outcome in config.outcomes.values():
        observed = data.loc[data[outcome.column].notna(), time]
        items.append(f"{outcome.column}: observed {observed.min()}-{observed.max()}.")
    if config.programme is not None:
        items.append(f"Programme: {config.programme.name} (plan dated {config.programme.plan_date}); "
                     f"source: {config.programme.source}")
    blocks: list[Block] = [Heading(2, "Data"), Bullets(tuple(items))]
    if config.flag:
        blocks.append(Paragraph(_flag_text(config)))
    return blocks


def _flag_text(config) -> str:
    flagged = [config.unit_name(u) for u in config.flagged_units]
    treated_flagged = [config.unit_name(u) for a in config.analyses for u in a.treated if u in config.flagged_units]
    excluded = [o.column for o in config.outcomes.values() if o.exclude_flagged]
    text = (f"Units flagged in '{config.flag}' ({len(flagged)}): {', '.join(flagged)}. "
            + (f"They are excluded as donors for {', '.join(excluded)}; " if excluded else "")
            + "for the other outcomes they are kept.")
    if treated_flagged:
        text += (f" Treated unit(s) {', '.join(dict.fromkeys(treated_flagged))} are flagged themselves: their "
                 "series follow a changing territory, so level outcomes compare different areas before and "
                 "after the change; read their level-outcome estimates with that in mind.")
    return text


def _donor_section(study: StudyResult, figures: dict) -> list[Block]:
    config = study.config
    excluded = ", ".join(config.unit_name(u) for u in config.excluded_units) or "none"
    blocks: list[Block] = [Heading(2, "Donors"), Paragraph(f"Never used as donors: {excluded}.")]
    rows = []
    for tr in study.task_results:
        if not (tr.task.is_main and tr.task.estimator == "classic"):
            continue
        first = next(iter(tr.fits.values()))
        dropped = ", ".join(f"{config.unit_name(u)}" for u, _ in first.design.dropped_donors) or "-"
        rows.append({"outcome": tr.task.outcome.column, "pool": tr.task.pool, "donors": len(first.donors),
                     "dropped (incomplete data)": dropped,
                     "smallest possible p": _p(1 / (len(first.donors) + 1))})
    blocks.append(Table(pd.DataFrame(rows)))
    blocks.append(Paragraph("Donors of the headline fits, by pool:"))
    blocks.append(Bullets(tuple(_donor_lists(study))))
    blocks.append(Paragraph("Largest donor weights of the headline fits:"))
    blocks.append(Bullets(tuple(_top_donors(study))))
    return blocks


def _donor_lists(study: StudyResult) -> list[str]:
    config = study.config
    items = []
    for tr in study.task_results:
        if tr.task.is_headline and tr.task.estimator == "classic":
            donors = next(iter(tr.fits.values())).donors
            items.append(f"{tr.task.pool} ({len(donors)}): " + ", ".join(config.unit_name(d) for d in donors))
    return items


def _top_donors(study: StudyResult) -> list[str]:
    config = study.config
    items = []
    for tr in study.task_results:
        if tr.task.is_headline and tr.task.estimator == "classic":
            for treated, result in tr.fits.items():
                weights = result.weights.sort_values(ascending=False)
                top = ", ".join(f"{config.unit_name(d)} {w:.2f}" for d, w in weights[weights > 0.01].items())
                items.append(f"{config.unit_name(treated)}, {tr.task.pool} pool: {top}")
    return items


def _results_section(study: StudyResult, figures: dict) -> list[Block]:
    main = _main(study)
    table = pd.DataFrame({
        "unit": main.treated,
        "outcome": main.outcome,
        "pool": main.pool,
        "effect": main.effect.map(_num),
        "pre-RMSPE": main.pre_rmspe.map(_num),
        "fit ratio": main.fit_ratio.map(lambda x: f"{x:.2f}"),
        "fit": main.fit_quality,
        "p (placebo)": main.p_value.map(_p),
        "donors": main.n_donors,
    })
    good, fair = study.config.fit_thresholds
    return [
        Heading(2, "Results"),
        Paragraph(_placebo_note(study)),
        Paragraph(
            "Effect: average gap (observed minus synthetic) over the post-period, in the outcome's units "
            "(log points for logs). Fit ratio: pre-period RMSPE divided by the smaller of the outcome's spread "
            "across the treated unit and its donors and the spread of the treated unit's own pre-period path; "
            f"'good' up to {good}, 'fair' up to {fair}, 'poor' above. "
            "p (placebo): share of units (the treated one and every donor refitted as if treated) whose "
            "post/pre RMSPE ratio is at least the treated unit's."
        ),
        Table(table),
    ]


def _placebo_note(study: StudyResult) -> str:
    counts = study.results.placebo_weights.value_counts()
    return (f"In-space placebo tests: {counts.get('refitted', 0)} fits whose placebos chose their own predictor "
            f"weights (as the treated fit did) and {counts.get('reused', 0)} whose placebos reused the treated "
            "unit's predictor weights (faster; column placebo_weights of results.csv).")


def _reading_section(study: StudyResult, figures: dict) -> list[Block]:
    main = _main(study)
    headline = _headline_column(study)
    blocks: list[Block] = [Heading(2, "Reading the results")]
    for name, rows in main[main.outcome == headline].groupby("treated", sort=False):
        blocks.append(Paragraph(" ".join(_read_row(row) for row in rows.itertuples())))
    blocks.append(Paragraph(_overall_text(main)))
    blocks.append(Paragraph(_power_text(study, main)))
    return blocks


def _read_row(row) -> str:
    direction = "above" if row.effect > 0 else "below"
    text = (f"{row.treated}, {row.pool} pool ({row.n_donors} donors): {row.outcome} is on average "
            f"{_num(abs(row.effect))} {direction} its synthetic control over {row.n_post} post-treatment "
            f"year(s); the pre-period fit is {row.fit_quality} (pre-RMSPE {_num(row.pre_rmspe)}, "
            f"fit ratio {row.fit_ratio:.2f})")
    if np.isfinite(row.p_value):
        text += f"; placebo p = {_p(row.p_value)} (smallest possible {_p(1 / (row.n_placebos + 1))})."
    else:
        text += "; no placebo test was run."
    return text + " " + _verdict(row)


def _verdict(row) -> str:
    if row.fit_quality == "poor":
        return ("The fit is poor: the synthetic control does not reproduce the pre-period path, so this gap "
                "is not a credible estimate of an effect.")
    if not np.isfinite(row.p_value):
        return "Without a placebo test the gap cannot be judged against chance."
    if row.p_value <= ALPHA:
        caveat = (f"; with only {row.n_post} post year(s) it may still reflect a shock of those years rather "
                  "than the treatment" if row.n_post <= 3 else "")
        return f"Few placebo units show a post/pre ratio this large, so the gap is unusual under no effect{caveat}."
    return ("Many placebo units show gaps as large relative to their fit, so the data cannot distinguish "
            "this gap from no effect (which is not evidence of no effect).")


def _overall_text(main: pd.DataFrame) -> str:
    tested = main[main.p_value.notna()]
    small = int((tested.p_value <= ALPHA).sum())
    poor = int((main.fit_quality == "poor").sum())
    return (f"Across all {len(main)} main estimates ({main.treated.nunique()} units x {main.outcome.nunique()} "
            f"outcomes x {main.pool.nunique()} pools), {small} of {len(tested)} tested have p <= {ALPHA} and "
            f"{poor} rest on a poor fit. With {len(tested)} tests, about {ALPHA * len(tested):.1f} would reach "
            f"p <= {ALPHA} by chance alone even with no effect anywhere, and the tests are not independent "
            "(the same cities and donors recur).")


def _power_text(study: StudyResult, main: pd.DataFrame) -> str:
    paths = study.paths
    post = paths.merge(main[["treated_code", "outcome", "pool", "treatment_start"]],
                       on=["treated_code", "outcome", "pool"])
    post = post[post.period >= post.treatment_start]
    spans = {o: sorted(post.loc[post.outcome == o, "period"].unique()) for o in main.outcome.unique()}
    donors = main.groupby("pool").n_donors.max()
    parts = ", ".join(f"{o}: {_years(span)} ({len(span)} year(s))" for o, span in spans.items())
    limits = ", ".join(f"{p}: {n} donors, so p >= {_p(1 / (n + 1))}" for p, n in donors.items())
    text = f"What the post-period can show. Post-treatment years in the data: {parts}. "
    if max(len(span) for span in spans.values()) <= 3:
        text += ("So few years can reveal a large, immediate change, not a gradual one: an effect that builds "
                 "up over several years would not show yet, and a single unusual year of one donor moves the "
                 "placebo ranking. ")
    return text + (f"The permutation p-values have a floor set by the number of donors ({limits}); "
                   "with little power, a large p-value is weak evidence either way.")


def _robustness_section(study: StudyResult, figures: dict) -> list[Block]:
    main = _main(study)
    headline = main[main.outcome == _headline_column(study)]
    if headline[["loo_min", "in_time_effect", "conformal_p"]].isna().all().all():
        return []
    options = study.config.inference
    table = pd.DataFrame({
        "unit": headline.treated,
        "pool": headline.pool,
        "effect": headline.effect.map(_num),
        "leave-one-out range": [f"{_num(a)} to {_num(b)}" for a, b in zip(headline.loo_min, headline.loo_max)],
        f"in-time placebo effect ({options.in_time_start})": headline.in_time_effect.map(_num),
        "in-time ratio / real ratio": [f"{_num(a)} / {_num(b)}" for a, b in
                                       zip(headline.in_time_ratio, headline.real_ratio)],
        "conformal p": headline.conformal_p.map(_p),
        "pooled p": headline.pooled_p.map(_p),
    })
    blocks: list[Block] = [
        Heading(2, "Robustness of the headline estimates"),
        Paragraph(
            "Leave-one-out: the effect when each donor with positive weight is dropped in turn. In-time "
            f"placebo: the treatment moved back to {options.in_time_start} (fit window ending before it); a fake "
            "effect of the same sign and comparable size means the gap predates the treatment. Conformal p: "
            "Chernozhukov, Wuethrich and Zhu's test of no effect in every post year. Pooled p: the treated "
            "units tested jointly (average standardised gap against placebo averages)."
        ),
        Table(table),
        Paragraph(" ".join(_robustness_text(row, options.in_time_start) for row in headline.itertuples())),
    ]
    blocks += _conformal_table(study)
    blocks += _pooled_table(study)
    return blocks


def _robustness_text(row, fake_start) -> str:
    text = f"{row.treated}, {row.pool} pool:"
    if np.isfinite(row.in_time_effect):
        text += (f" with a fake start in {fake_start} the synthetic control already misses by "
                 f"{_num(row.in_time_effect)} on average before the real start (real effect {_num(row.effect)});")
        if np.sign(row.in_time_effect) == np.sign(row.effect) and abs(row.in_time_effect) >= abs(row.effect) / 2:
            text += (" a gap of the same sign and comparable size opened before the treatment, so the "
                     "post-treatment gap cannot be attributed to it.")
        else:
            text += " the fake-start gap is small or of the other sign, as expected if the paths diverged only after treatment."
    if np.isfinite(row.loo_min):
        same_sign = np.sign(row.loo_min) == np.sign(row.loo_max) == np.sign(row.effect)
        text += (" Dropping any one donor keeps the sign of the effect." if same_sign else
                 " Dropping a single donor changes the sign of the effect: it rests on that donor.")
    return text


def _conformal_table(study: StudyResult) -> list[Block]:
    rows = []
    for tr in study.task_results:
        for treated, result in tr.inference.get("conformal", {}).items():
            for period, r in result.table.iterrows():
                rows.append({"unit": study.config.unit_name(treated), "pool": tr.task.pool, "year": period,
                             "gap": _num(r.estimate), f"{1 - result.alpha:.0%} interval":
                             f"[{_num(r.lower)}, {_num(r.upper)}]" + (" (grid edge)" if r.lower_open or r.upper_open else ""),
                             "p": _p(r.p_value)})
    if not rows:
        return []
    return [Paragraph("Conformal intervals per post-treatment year (headline outcome):"), Table(pd.DataFrame(rows))]


def _pooled_table(study: StudyResult) -> list[Block]:
    rows = [{"outcome": tr.task.outcome.column, "pool": tr.task.pool,
             "average standardised gap": _num(tr.pooled.average), "pooled p": _p(tr.pooled.p_value),
             "null": f"{tr.pooled.method}, {tr.pooled.n_draws} placebo averages"}
            for tr in study.task_results if tr.pooled is not None and tr.task.is_main]
    if not rows:
        return []
    return [Paragraph("Pooled test of the treated units, every outcome:"), Table(pd.DataFrame(rows))]


def _sensitivity_section(study: StudyResult, figures: dict) -> list[Block]:
    results = study.results
    others = results[results.analysis != "main"]
    if others.empty:
        return []
    blocks: list[Block] = [Heading(2, "Sensitivity analyses")]
    for name, rows in others.groupby("analysis", sort=False):
        analysis = next(a for a in study.config.analyses if a.name == name)
        blocks.append(Heading(3, name))
        blocks.append(Paragraph(
            f"Treated: {', '.join(study.config.unit_name(t) for t in analysis.treated)}; treatment from "
            f"{analysis.treatment_start}; outcomes {', '.join(analysis.outcomes)}; pools {', '.join(analysis.pools)}."
        ))
        blocks.append(Table(_short_table(rows)))
    return blocks


def _short_table(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "unit": rows.treated, "outcome": rows.outcome, "pool": rows.pool, "effect": rows.effect.map(_num),
        "fit": rows.fit_quality, "p (placebo)": rows.p_value.map(_p), "donors": rows.n_donors,
    })


def _estimator_section(study: StudyResult, figures: dict) -> list[Block]:
    results = study.results
    rows = results[(results.analysis == "main") & (results.outcome == _headline_column(study))]
    if rows.estimator.nunique() < 2:
        return []
    estimators = list(dict.fromkeys(rows.estimator))

    def by_estimator(column: str, formatted) -> pd.DataFrame:
        # reindex: pivot_table drops an estimator whose values are all missing (no placebo test)
        wide = rows.pivot_table(index=["treated", "pool"], columns="estimator", values=column, sort=False)
        return wide.reindex(columns=estimators).map(formatted).reset_index()

    untested = [e for e in estimators if rows.loc[rows.estimator == e, "p_value"].isna().all()]
    note = f" No placebo test was run for {', '.join(untested)} (see the configuration)." if untested else ""
    return [
        Heading(2, "Other estimators"),
        Paragraph("Average effect on the headline outcome by estimator (each refitted on the same donors):"),
        Table(by_estimator("effect", _num)),
        Paragraph("Their placebo p-values:" + note),
        Table(by_estimator("p_value", _p)),
    ]


def _curve_section(study: StudyResult, figures: dict) -> list[Block]:
    if not study.curves:
        return []
    rows = []
    for (treated, pool), curve in study.curves.items():
        effects = curve.table["effect"]
        rows.append({"unit": study.config.unit_name(treated), "pool": pool, "fits": len(effects),
                     "median effect": _num(effects.median()), "range": f"{_num(effects.min())} to {_num(effects.max())}",
                     "share negative": f"{(effects < 0).mean():.2f}"})
    return [
        Heading(2, "Specification curves"),
        Paragraph("The headline outcome refitted over standard alternative specifications (all outcome lags, "
                  "their mean, a few lags; each with and without the covariates) and estimators."),
        Table(pd.DataFrame(rows)),
    ]


def _figure_section(study: StudyResult, figures: dict) -> list[Block]:
    return [Heading(2, "Figures")] + [Figure(name, caption) for name, caption in figures.items()]


def _notes_section(study: StudyResult, figures: dict) -> list[Block]:
    config = study.config
    options = config.fit_options
    return [
        Heading(2, "How this report was made"),
        Bullets((
            f"Configuration: {config.source}.",
            f"Predictor-weight search: seed {options.seed}, {options.n_random_starts} random starts, "
            f"{options.n_polish} polish step(s).",
            f"Run time: {study.seconds:.1f} s wall clock on {os.cpu_count()} CPU core(s), "
            f"{len(study.task_results)} tasks.",
            "Tables: results.csv, weights.csv, paths.csv in this folder.",
        )),
    ]
