"""cross_validate_predictor_weights: ADH 2015's training/validation choice of v."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import synthcontrol as sc
from synthcontrol.errors import SpecError
from synthcontrol.weights import is_admissible

TRAINING = [sc.mean("x", 2000, 2003), sc.at("y", 2000), sc.at("y", 2003)]


def test_weights_are_the_training_fit_s_labelled_for_the_spec(panel, spec):
    v = sc.cross_validate_predictor_weights(panel, spec, training_predictors=TRAINING,
                                            validation_window=(2004, 2007), seed=2)
    training = sc.fit(panel, dataclasses.replace(spec, predictors=TRAINING, fit_window=(2004, 2007)), seed=2)
    assert list(v.index) == [p.label for p in spec.predictors] and v.name == "predictor_weight"
    np.testing.assert_array_equal(v.to_numpy(), training.predictor_weights.to_numpy())
    assert abs(v.sum() - 1) < 1e-12 and is_admissible(v.to_numpy(), 1e-8)


def test_the_weights_feed_a_fit_of_the_spec(panel, spec):
    v = sc.cross_validate_predictor_weights(panel, spec, training_predictors=TRAINING,
                                            validation_window=(2004, 2007))
    res = sc.fit(panel, spec, predictor_weights=v)
    assert res.predictor_weights_given
    np.testing.assert_allclose(res.predictor_weights.to_numpy(), v.to_numpy(), rtol=1e-12)
    again = sc.cross_validate_predictor_weights(panel.sample(frac=1.0, random_state=3), spec,
                                                training_predictors=TRAINING, validation_window=(2004, 2007))
    np.testing.assert_array_equal(again.to_numpy(), v.to_numpy())  # row order does not matter


def test_validation_beats_training_on_the_validation_window(panel, spec):
    """The chosen v minimises the validation-window MSPE of the training fit, so no
    other admissible v, e.g. equal weights, fits that window better."""
    window = (2004, 2007)
    training_spec = dataclasses.replace(spec, predictors=TRAINING, fit_window=window)
    v = sc.cross_validate_predictor_weights(panel, spec, training_predictors=TRAINING, validation_window=window)
    chosen = sc.fit(panel, training_spec, predictor_weights=v.to_numpy())
    equal = sc.fit(panel, training_spec, predictor_weights=np.ones(len(TRAINING)))
    assert chosen.loss_v <= equal.loss_v * (1 + 1e-9)


def test_bad_arguments_are_refused(panel, spec):
    with pytest.raises(SpecError, match="training_predictors has 1 entries"):
        sc.cross_validate_predictor_weights(panel, spec, training_predictors=TRAINING[:1],
                                            validation_window=(2004, 2007))
    with pytest.raises(SpecError, match="one treated unit"):
        sc.cross_validate_predictor_weights(panel, dataclasses.replace(spec, treated=["T", "A"]),
                                            training_predictors=TRAINING, validation_window=(2004, 2007))
    with pytest.raises(SpecError, match="validation_window"):
        sc.cross_validate_predictor_weights(panel, spec, training_predictors=TRAINING, validation_window=(2004,))
    with pytest.raises(SpecError, match="spec must be"):
        sc.cross_validate_predictor_weights(panel, "spec", training_predictors=TRAINING,
                                            validation_window=(2004, 2007))
