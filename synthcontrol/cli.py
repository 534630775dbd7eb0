"""The ``synthcontrol`` command: run a study from a TOML configuration.

::

    synthcontrol run case_studies/yrd_twinning.toml --out results/yrd
    python -m synthcontrol run case_studies/california.toml --out results/ca --quick
    synthcontrol check case_studies/yrd_twinning.toml

The command holds no logic of its own: :func:`synthcontrol.config.load_config`
parses, :func:`synthcontrol.study.run_study` runs, and
:func:`synthcontrol.report.write_report` writes. Progress goes to stderr through
:mod:`logging`; errors in the configuration or data are printed as one line
naming the key at fault, with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from .config import StudyConfig, load_config
from .errors import SynthControlError
from .report import write_report
from .study import run_study

__all__ = ["main"]

logger = logging.getLogger("synthcontrol.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthcontrol", description="Synthetic control studies from TOML configurations.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="fit, test and write the report of a study")
    run.add_argument("config", type=Path, help="study configuration (TOML)")
    run.add_argument("--out", type=Path, help="output folder (default: [study] output of the configuration)")
    run.add_argument("--quick", action="store_true",
                     help="main analysis, headline outcome, first pool and classic estimator only")
    run.add_argument("--jobs", type=int, default=None, help="parallel workers (default: [inference] n_jobs)")
    run.add_argument("--quiet", action="store_true", help="warnings and errors only")
    check = commands.add_parser("check", help="validate a configuration and list its fits")
    check.add_argument("config", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``synthcontrol`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        if args.command == "check":
            return _check(load_config(args.config))
        return _run(args)
    except SynthControlError as error:
        sys.stderr.write(f"synthcontrol: error: {error}\n")
        return 2


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config, quick=args.quick)
    out = args.out or config.output
    if out is None:
        sys.stderr.write("synthcontrol: error: no output folder; give --out DIR or [study] output\n")
        return 2
    logger.info("%s: %d fits to run", config.title, len(config.tasks))
    study = run_study(config, n_jobs=args.jobs)
    written = write_report(study, out)
    logger.info("wrote %s", ", ".join(p.name for p in written.values()))
    return 0


def _check(config: StudyConfig) -> int:
    sys.stdout.write(f"{config.title}: configuration is valid; {len(config.tasks)} fits\n")
    for task in config.tasks:
        sys.stdout.write(f"  {task.analysis} | {task.outcome.column} | {task.pool} | {task.estimator} | "
                         f"{len(task.spec.treated_units)} treated, {len(task.spec.donors)} candidate donors\n")
    return 0
