"""The ``synthcontrol`` command: check or run a study from a TOML configuration.

::

    synthcontrol check case_studies/yrd_twinning.toml --out output/yrd
    synthcontrol run case_studies/yrd_twinning.toml --out output/yrd
    python -m synthcontrol run case_studies/california.toml --out output/ca --quick

Both commands take the same options and go through the same validation
(:func:`_validated`): the configuration and its data
(:func:`synthcontrol.study.load_config`, which also builds every design the study
will fit) and the output folder (:func:`synthcontrol.report.check_output`). So
``check`` accepts exactly what ``run`` accepts, and ``run`` fails before its first
fit or not at all for these reasons. The command holds no logic of its own beyond
that: :func:`synthcontrol.study.run_study` runs, :func:`synthcontrol.write_report`
writes. Progress goes to stderr through :mod:`logging`. An error in the
configuration, the data or the output folder is one line naming the key or file at
fault, with exit status 2; ``--debug`` shows the traceback instead. ``run`` keeps
each finished refit in ``OUT/.checkpoint`` until the report is written, so that a
run interrupted (status 130) resumes where it stopped when run again.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .errors import ConfigError, SynthControlError
from .report import OutputFolder, check_output, write_report
from .report.output import CHECKPOINT
from .study import StudyConfig, load_config, run_study

__all__ = ["main"]

logger = logging.getLogger("synthcontrol.cli")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("config", type=Path, help="study configuration (TOML)")
    common.add_argument("--out", type=Path, help="output folder (default: [study] output of the configuration)")
    common.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty folder that holds no earlier output of this study, "
                             "removing an earlier report's files first")
    common.add_argument("--quick", action="store_true",
                        help="main analysis, headline outcome, first pool and reference estimator only")
    common.add_argument("--jobs", type=int, default=None, help="parallel workers (default: [inference] n_jobs)")
    common.add_argument("--quiet", action="store_true", help="warnings and errors only")
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser = argparse.ArgumentParser(prog="synthcontrol", description="Synthetic control studies from TOML files.")
    parser.add_argument("--version", action="version", version=f"synthcontrol {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", parents=[common], help="fit, test and write the report of a study").set_defaults(
        handler=_run)
    commands.add_parser("check", parents=[common], help="validate a study and its output folder; list its fits"
                        ).set_defaults(handler=_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``synthcontrol`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        sys.stderr.write("synthcontrol: interrupted\n")
        return 130
    except (SynthControlError, OSError) as error:
        if args.debug:
            raise
        sys.stderr.write(f"synthcontrol: error: {_one_line(error)}\n")
        return 2
    except Exception as error:  # a bug: say so in one line, the traceback is behind --debug
        if args.debug:
            raise
        sys.stderr.write(f"synthcontrol: internal error: {type(error).__name__}: {_one_line(error)}; "
                         "run again with --debug for the traceback, and please report it\n")
        return 1


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename or ''}: {error.strerror}".lstrip(": ")
    return " ".join(str(error).split())


def _validated(args: argparse.Namespace) -> tuple[StudyConfig, OutputFolder | None]:
    """Everything ``run`` checks before its first fit; ``check`` runs exactly this.
    The output folder is None when neither ``--out`` nor ``[study] output`` names one."""
    if args.jobs == 0:
        raise ConfigError("--jobs 0 runs nothing; give a number of workers, or -1 for every core")
    config = load_config(args.config, quick=args.quick)
    out = args.out or config.output
    return config, None if out is None else check_output(out, config, overwrite=args.overwrite)


def _run(args: argparse.Namespace) -> int:
    config, folder = _validated(args)
    if folder is None:
        raise ConfigError("no output folder: give --out DIR or [study] output in the configuration")
    logger.info("%s: %d fits to run", config.title, len(config.tasks))
    checkpoint = folder.path / CHECKPOINT
    if checkpoint.exists():
        logger.info("resuming: refits finished by an earlier, unfinished run are read from %s", checkpoint)
    study = run_study(config, n_jobs=args.jobs, checkpoint_dir=checkpoint)
    written = write_report(study, folder.path, overwrite=args.overwrite)
    shutil.rmtree(checkpoint, ignore_errors=True)  # the report holds every result now
    logger.info("wrote %s", ", ".join(p.name for p in written.values()))
    return 0


def _check(args: argparse.Namespace) -> int:
    config, folder = _validated(args)
    write = sys.stdout.write
    write(f"{config.title}: configuration is valid; {len(config.tasks)} fits\n")
    for task in config.tasks:
        write(f"  {task.analysis} | {task.outcome.column} | {task.pool} | {task.estimator} | "
              f"{len(task.spec.treated_units)} treated, {len(task.spec.donors)} candidate donors\n")
    write(f"output folder {_folder_state(folder)}\n")
    return 0


def _folder_state(folder: OutputFolder | None) -> str:
    if folder is None:
        return "not given: run needs --out DIR or [study] output"
    return f"{folder.path}: {_folder_effect(folder)}"


def _folder_effect(folder: OutputFolder) -> str:
    if not folder.path.exists():
        return "will be created"
    resumed = "; the refits of an unfinished run will be resumed (those of fits this configuration changed are " \
        "redone)" if (folder.path / CHECKPOINT).exists() else ""
    if not folder.stale and not folder.kept:
        return "empty" + resumed
    state = f"{len(folder.stale)} file(s) of an earlier report will be replaced"
    return state + (f"; {len(folder.kept)} other entries are kept" if folder.kept else "") + resumed
