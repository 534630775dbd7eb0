"""What every replication script shares: the ``--out`` option, printing, and the figures."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # scripts write files; they never open a window

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

import synthcontrol as sc  # noqa: E402


def output_dir(name: str, argv: Sequence[str] | None, description: str) -> Path:
    """Parse ``[--out DIR]`` (default ``output/<name>``) and create the folder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=Path("output") / name, help="folder for the figures")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    return out


def report(result: sc.SynthResult, out: Path, *extra: str) -> list[Path]:
    """Print the summary and any extra text; save path, gap and weight figures as PNG."""
    print(result.summary().as_text())
    for text in extra:
        print("\n" + text)
    written = []
    for kind in ("path", "gap", "weights"):
        fig, ax = plt.subplots(figsize=(7, 4))
        getattr(result, f"plot_{kind}")(ax=ax)
        ax.set_title(f"{result.treated}: {kind}")
        fig.tight_layout()
        written.append(out / f"{kind}.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    print(f"\nfigures written to {out}/")
    return written
