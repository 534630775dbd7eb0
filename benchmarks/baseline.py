"""Today's code as it was before the compiled search, importable beside the current one.

Issue 13 asks for speed-ups "against today's code on the same machine", measured in
the same run. :func:`load` exports ``synthcontrol/`` of commit :data:`COMMIT` (the
last commit before the compiled kernels) with ``git archive`` into
``benchmarks/.cache/`` (git-ignored), renames the package ``synthcontrol_baseline``
(rewriting its few absolute imports) and imports it, so that both versions run in
one process, interleaved.
"""

from __future__ import annotations

import importlib
import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
COMMIT = "4918256"
NAME = "synthcontrol_baseline"
CACHE = ROOT / "benchmarks" / ".cache" / f"baseline-{COMMIT}"


def export(commit: str = COMMIT, folder: Path = CACHE) -> Path:
    """Write the package of ``commit`` to ``folder/synthcontrol_baseline`` (once)."""
    package = folder / NAME
    if (package / "__init__.py").exists():
        return folder
    archive = subprocess.run(["git", "archive", "--format=tar", commit, "synthcontrol"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            target = package / Path(member.name).relative_to("synthcontrol")
            target.parent.mkdir(parents=True, exist_ok=True)
            content = tar.extractfile(member).read()  # type: ignore[union-attr]
            if target.suffix == ".py":
                content = re.sub(rb"\bsynthcontrol\b(?=[.\s])", NAME.encode(), content)
            target.write_bytes(content)
    return folder


def load() -> ModuleType:
    """The baseline package, imported (exported first if needed)."""
    folder = export()
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(NAME)


def spec(module: ModuleType, current: object) -> object:
    """The baseline package's own ``Spec`` equal to a current ``synthcontrol.Spec``."""
    from dataclasses import fields

    values = {f.name: getattr(current, f.name) for f in fields(current)}  # type: ignore[arg-type]
    values["predictors"] = tuple(module.spec.Predictor(p.variable, p.start, p.end, p.op)
                                 for p in values["predictors"])
    return module.Spec(**values)
