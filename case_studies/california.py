"""Replication: California's tobacco control programme, Proposition 99 (Abadie, Diamond
and Hainmueller 2010), with their specification.

Run: ``python case_studies/california.py [--out DIR]`` (default ``output/california``).
"""

from __future__ import annotations

from typing import Sequence

from _common import output_dir, report

import synthcontrol as sc

SPEC = sc.Spec(
    outcome="cigsale",
    treated="California",
    treatment_start=1989,
    predictors=[
        sc.mean("lnincome", 1980, 1988),
        sc.mean("retprice", 1980, 1988),
        sc.mean("age15to24", 1980, 1988),
        sc.mean("beer", 1984, 1988),
        sc.at("cigsale", 1975),
        sc.at("cigsale", 1980),
        sc.at("cigsale", 1988),
    ],
    fit_window=(1970, 1988),
)

#: ADH (2010, Table 2) donors of the synthetic California.
ADH_DONORS = ["Utah", "Nevada", "Montana", "Colorado", "Connecticut"]


def main(argv: Sequence[str] | None = None) -> sc.SynthResult:
    out = output_dir("california", argv, __doc__.splitlines()[0])
    result = sc.fit(sc.datasets.load_smoking(), SPEC)
    comparison = (
        f"Weight on ADH's five donors {', '.join(ADH_DONORS)}: {result.weights[ADH_DONORS].sum():.3f}\n"
        f"Pre-period RMSPE {result.pre_rmspe:.3f} (ADH 2010: 1.76); "
        f"gap in 2000 {result.path.loc[2000, 'gap']:.1f} packs per capita (ADH: about -26)"
    )
    report(result, out, comparison)
    return result


if __name__ == "__main__":
    main()
