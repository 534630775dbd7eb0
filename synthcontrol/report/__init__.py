"""Reports of studies and fits: CSV tables, PNG figures, and a Markdown + HTML report.

:func:`write_report` takes a :class:`~synthcontrol.study.StudyResult`, or a single
:class:`~synthcontrol.SynthResult` or :class:`~synthcontrol.SynthResults` (with any
inference results run on them), and writes into one folder:

``results.csv``
    One row per analysis, treated unit (or block of treated units fitted together,
    ``scope = "block"``), outcome, pool and estimator, each with its placebo
    p-value (see :class:`~synthcontrol.study.Estimate`). ``treated_code`` holds the
    unit identifier; ``treated`` its readable name.
``weights.csv``
    Donor weights of every fit, zeros included (``donor_code`` likewise).
``paths.csv``
    Observed and synthetic outcome and gap, every fit and period.
``report.md``, ``report.html`` and ``*.png``
    The report and its figures.
``synthcontrol.json``
    The manifest that marks the folder as this study's output (see
    :mod:`~synthcontrol.report.output`).

The report's text is generated from the numbers (:mod:`~synthcontrol.report.view`
selects them, the jinja2 templates in ``templates/`` write the prose once for both
formats). It opens with the answer to each claim of the study
(:mod:`~synthcontrol.report.answer`): the estimates, their uncertainty and whether
the design identifies them; then the figures; then the details: what was estimated,
on which data (and what its audit found and dropped, :mod:`~synthcontrol.report.audit`)
and donors, the results, robustness, blocks, sensitivity analyses and other
estimators. Per-unit numbers are in tables; each rule and caveat is said once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

from .._validation import check_bool, check_directory, describe
from ..errors import ArgumentError
from ..results import SynthResult, SynthResults
from ..study import StudyResult, study_of
from ..study.single import InferenceResult, check_title, inference_results
from .figures import write_figures
from .output import OutputFolder, check_output
from .render import render_html, render_markdown
from .view import ALPHA, ReportView

__all__ = ["write_report", "check_output", "OutputFolder", "ALPHA"]

logger = logging.getLogger("synthcontrol.report")


def write_report(
    result: StudyResult | SynthResult | SynthResults,
    out: str | os.PathLike,
    *,
    inference: InferenceResult | Iterable[InferenceResult] | None = (),
    title: str | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the CSV files, figures and the Markdown and HTML report into ``out``.

    Parameters
    ----------
    result : StudyResult, SynthResult or SynthResults
        A study, or fits made with :func:`synthcontrol.fit`.
    out : path
        Output folder: created if missing; an earlier output of the same study is
        replaced (see :func:`~synthcontrol.report.output.check_output`).
    inference : inference result or iterable of them, optional
        For fits only: placebo, leave-one-out, in-time, conformal and pooled results
        of these fits, reported beside them (one result alone, or several; ``None``:
        none).
    title : str, optional
        For fits only: the report's title (not blank).
    overwrite : bool, default False
        Write into a non-empty folder that holds no output of this study, after
        removing an earlier report's files from it.

    Returns
    -------
    dict
        File kind -> path written (``results``, ``weights``, ``paths``, ``markdown``,
        ``html``, ``manifest``, and ``figure:NAME`` per figure).

    Raises
    ------
    ArgumentError
        When an argument has a type or value it does not accept: ``out`` not a
        folder path, ``inference`` holding something other than inference results,
        a blank ``title``, or ``inference`` or ``title`` given with a StudyResult
        (a study carries its own).
    ConfigError
        When ``out`` may not receive the report (see ``overwrite``).

    Examples
    --------
    >>> import tempfile, synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)],
    ...                donors=["Utah", "Nevada", "Montana", "Colorado", "Idaho"])
    >>> res = sc.fit(sc.datasets.load_smoking(), spec)
    >>> written = sc.write_report(res, tempfile.mkdtemp(), inference=[sc.placebo_test(res)])
    >>> sorted(kind for kind in written if not kind.startswith("figure:"))
    ['html', 'manifest', 'markdown', 'paths', 'results', 'weights']
    """
    out, overwrite = _check_out(out), check_bool(overwrite, "overwrite")
    study = _study(result, inference, title)
    folder = check_output(out, study.config, overwrite=overwrite)
    folder.clear()
    written = _write_tables(study, folder.path)
    view = ReportView(study)
    figures = write_figures(view, folder.path)
    view = ReportView(study, figures)
    written["markdown"] = folder.path / "report.md"
    written["html"] = folder.path / "report.html"
    written["markdown"].write_text(render_markdown(view), encoding="utf-8")
    written["html"].write_text(render_html(view), encoding="utf-8")
    written.update({f"figure:{f.file}": folder.path / f.file for f in figures})
    written["manifest"] = folder.mark(written.values(), study.config.title)
    logger.info("report written to %s (%d figures)", folder.path, len(figures))
    return written


def _check_out(out: object) -> Path:
    if not isinstance(out, (str, os.PathLike)):
        raise ArgumentError(f"out must be the path of the output folder (str or pathlib.Path), got {describe(out)}")
    return check_directory(out, "out")


def _study(result: object, inference: object, title: object) -> StudyResult:
    """The study to report: ``result`` itself, or a study of fits and their inference."""
    if isinstance(result, StudyResult):
        given = [name for name, value in (("inference", inference_results(inference)), ("title", check_title(title)))
                 if value]
        if given:
            raise ArgumentError(f"{' and '.join(given)} given with a StudyResult, which carries its own; "
                                "drop the argument (it is for fits made with sc.fit only)")
        return result
    if not isinstance(result, (SynthResult, SynthResults)):
        raise ArgumentError(f"result must be a StudyResult (sc.run_study), SynthResult or SynthResults (sc.fit), "
                            f"got {describe(result)}")
    return study_of(result, inference=inference, title=title)


def _write_tables(study: StudyResult, out: Path) -> dict[str, Path]:
    written = {name: out / f"{name}.csv" for name in ("results", "weights", "paths")}
    study.results.to_csv(written["results"], index=False)
    study.weights.to_csv(written["weights"], index=False)
    study.paths.to_csv(written["paths"], index=False)
    return written
