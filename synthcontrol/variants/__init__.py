"""Estimators beyond the classic synthetic control.

Importing this package registers them, with the settings each one takes, in
:mod:`synthcontrol.registry`, so ``sc.fit(df, spec, estimator=name,
estimator_options={...})`` and every refit of inference reach them through
:func:`~synthcontrol.estimators.fit_design`:

================  ==================================================  ===========================
name              method                                              options
================  ==================================================  ===========================
``"penalized"``   Abadie and L'Hour (2021), penalised towards         ``lambda_``, ``lambdas``
                  nearest neighbours
``"augmented"``   Ben-Michael, Feller and Rothstein (2021), ridge     ``lambda_``, ``holdout``,
                  augmented synthetic control                          ``min_1se``
``"demeaned"``    Ferman and Pinto (2021), intercept-shifted SC       none
``"sdid"``        Arkhangelsky et al. (2021), synthetic DiD           ``se``, ``zeta_omega``
``"did"``         difference in differences (uniform weights)         ``se``
``"robust"``      Amjad, Shah and Shen (2018), singular-value          ``sv_count``, ``threshold``,
                  thresholding then ridge regression                   ``lambda_``
================  ==================================================  ===========================

Several treated units at once (a block, or staggered adoption in stacked cohorts)
with synthdid's placebo and jackknife standard errors: :func:`fit_several`.
"""

from . import augmented, demeaned, penalized, robust, sdid
from .several import SeveralTreatedResult, fit_several

__all__ = ["augmented", "demeaned", "penalized", "robust", "sdid", "fit_several", "SeveralTreatedResult"]
