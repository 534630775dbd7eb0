"""The output folder of a report: checked before any fit, cleared of the previous
run's files before writing, and marked with a manifest.

A folder may receive a report when it does not exist yet, is empty (but for the
checkpoint of an unfinished run, :data:`CHECKPOINT`), or holds the output of an
earlier run of the same study (its manifest, ``synthcontrol.json``,
names the same configuration file, or the same title for a study made in Python);
that earlier output is removed before the new one is written, so no stale figure
survives. Any other non-empty folder is refused unless ``overwrite`` is given; then
the files an earlier report wrote (those its manifest lists, or files named as
reports name them) are removed first, and other files are left alone.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import ConfigError
from ..study import StudyConfig

__all__ = ["MANIFEST", "CHECKPOINT", "OutputFolder", "check_output"]

#: The file that marks a folder as a report's output.
MANIFEST = "synthcontrol.json"
#: The folder in which ``synthcontrol run`` keeps the refits of an unfinished run
#: (see :func:`synthcontrol.study.run_study`); removed once the report is written.
CHECKPOINT = ".checkpoint"
#: Names of the files a report writes (see :func:`synthcontrol.report.write_report`).
REPORT_FILES = ("results.csv", "weights.csv", "paths.csv", "report.md", "report.html", "*.png", MANIFEST)


@dataclass(frozen=True)
class OutputFolder:
    """A checked output folder.

    Attributes
    ----------
    path : Path
    identity : str
        What makes two runs "the same study" (configuration file or title).
    stale : tuple of Path
        Files of an earlier report, removed by :meth:`clear` before writing.
    kept : tuple of str
        Other files in the folder, left alone.
    """

    path: Path
    identity: str
    stale: tuple[Path, ...] = ()
    kept: tuple[str, ...] = ()

    def clear(self) -> None:
        """Create the folder, and remove the earlier report's files."""
        self.path.mkdir(parents=True, exist_ok=True)
        for file in self.stale:
            file.unlink(missing_ok=True)

    def mark(self, written: Iterable[Path], title: str) -> Path:
        """Write the manifest listing ``written`` (file names inside the folder)."""
        manifest = self.path / MANIFEST
        names = sorted({Path(p).name for p in written} - {MANIFEST})
        manifest.write_text(json.dumps({"study": self.identity, "title": title, "files": names}, indent=1) + "\n",
                            encoding="utf-8")
        return manifest


def identity(config: StudyConfig) -> str:
    """What makes two runs the same study: the resolved configuration file, or the title."""
    return f"config:{config.source.resolve()}" if config.source is not None else f"title:{config.title}"


def check_output(out: str | os.PathLike, config: StudyConfig, *, overwrite: bool = False) -> OutputFolder:
    """Check that a report of ``config`` may be written into ``out`` (see the module notes).

    Raises
    ------
    ConfigError
        ``out`` is a file, lies under a file, or is a non-empty folder holding no
        earlier output of this study (and ``overwrite`` is false); or matplotlib,
        which draws the figures, is not installed.
    """
    path = Path(out)
    _check_plotting()
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"output folder {path} cannot be created: {parent} is a file; choose another --out")
    existing = next(p for p in (path, *path.parents, Path.cwd()) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {path} cannot be written: {existing} is not writable; choose another --out")
    own = identity(config)
    if not path.exists():
        return OutputFolder(path, own)
    entries = sorted(p.name for p in path.iterdir() if p.name != CHECKPOINT)  # an unfinished run's
    previous = _manifest(path)
    listed = previous.get("files", []) if isinstance(previous.get("files"), list) else []
    ours = {n for n in entries if any(fnmatch.fnmatch(n, pattern) for pattern in REPORT_FILES)}
    stale = sorted({n for n in listed if n in entries and Path(n).name == n} | ({MANIFEST} & set(entries)))
    if entries and previous.get("study") != own:
        if not overwrite:
            raise ConfigError(_refusal(path, entries, previous))
        stale = sorted(set(stale) | ours)
    kept = tuple(n for n in entries if n not in stale)
    return OutputFolder(path, own, tuple(path / n for n in stale if (path / n).is_file()), kept)


def _manifest(path: Path) -> dict:
    try:
        found = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _refusal(path: Path, entries: list[str], previous: dict) -> str:
    shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
    held = f"the output of another study ({previous.get('title', '?')!r})" if previous else "files of its own"
    return (f"output folder {path} is not empty: it holds {held} ({len(entries)} entries: {shown}); "
            "choose another --out, or pass --overwrite to replace the earlier report's files")


def _check_plotting() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError("the report's figures need matplotlib, which is not installed: "
                          "pip install 'synthcontrol[plots]'")
