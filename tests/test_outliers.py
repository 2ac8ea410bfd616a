"""Anomaly detection on top of score_samples: contamination threshold and +1/-1 flags."""
import numpy as np
import pytest

from gmm_fast import GaussianMixture, outlier_threshold


def _reference_threshold(scores, contamination, weights):
    """Brute force with integer weights: repeat each score, sort, take index floor(c * n)."""
    repeated = np.sort(np.repeat(scores, weights))
    return repeated[int(np.floor(contamination * len(repeated)))]


@pytest.mark.parametrize("contamination", [0.01, 0.05, 0.07, 0.1, 0.25, 0.5])
def test_threshold_unweighted(contamination):
    scores = np.random.default_rng(0).normal(size=1000)
    threshold = outlier_threshold(scores, contamination)
    flagged = np.count_nonzero(scores < threshold)
    assert flagged == int(np.floor(contamination * 1000 + 1e-9))
    assert threshold == _reference_threshold(scores, contamination, np.ones(1000, int))


@pytest.mark.parametrize("contamination", [0.03, 0.1, 0.3])
def test_threshold_integer_weights_equal_repetition(contamination):
    rng = np.random.default_rng(1)
    scores = rng.normal(size=300)
    weights = rng.integers(0, 5, size=300)
    expected = _reference_threshold(scores, contamination, weights)
    assert outlier_threshold(scores, contamination, weights) == expected
    assert outlier_threshold(np.repeat(scores, weights), contamination) == expected


def test_gmm_contamination_flags_fraction_and_far_points():
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(0, 1, (600, 2)), rng.normal(8, 1, (400, 2))])
    gm = GaussianMixture(2, contamination=0.04, random_state=0).fit(X)
    log_density = gm.score_samples(X)
    assert gm.offset_ == _reference_threshold(log_density, 0.04, np.ones(1000, int))
    flags = gm.predict_outliers(X)
    assert set(np.unique(flags)) == {-1, 1}
    assert np.count_nonzero(flags == -1) == 40
    np.testing.assert_array_equal(gm.decision_function(X), log_density - gm.offset_)
    np.testing.assert_array_equal(flags == -1, log_density < gm.offset_)
    # Far from both groups: an outlier; at a group centre: an inlier.
    assert gm.predict_outliers([[4.0, -20.0], [0.0, 0.0], [8.0, 8.0]]).tolist() == [-1, 1, 1]


def test_gmm_contamination_weighted():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    weights = rng.integers(1, 4, size=400)
    gm = GaussianMixture(1, contamination=0.1, random_state=0).fit(X, sample_weight=weights)
    log_density = gm.score_samples(X)
    assert gm.offset_ == _reference_threshold(log_density, 0.1, weights)
    flagged_weight = weights[gm.predict_outliers(X) == -1].sum()
    assert flagged_weight <= 0.1 * weights.sum() < flagged_weight + weights.max()


def test_set_outlier_threshold_after_fit():
    X = np.random.default_rng(4).normal(size=(500, 2))
    gm = GaussianMixture(1, random_state=0).fit(X)
    # Like sklearn's available_if: no threshold, no such methods (hasattr is False).
    assert not hasattr(gm, "decision_function") and not hasattr(gm, "predict_outliers")
    with pytest.raises(AttributeError, match="has no outlier threshold, so no predict_outliers"):
        gm.predict_outliers(X)
    with pytest.raises(ValueError, match=r"contamination=None: give a fraction"):
        gm.set_outlier_threshold(X)
    assert gm.set_outlier_threshold(X, 0.2) is gm
    assert hasattr(gm, "decision_function")
    assert np.count_nonzero(gm.predict_outliers(X) == -1) == 100


@pytest.mark.parametrize("contamination", [0, -0.1, 0.6, "auto", True])
def test_bad_contamination(contamination):
    X = np.random.default_rng(5).normal(size=(50, 2))
    with pytest.raises(ValueError, match=r"contamination=.* should be a float in \(0, 0\.5\]"):
        GaussianMixture(1, contamination=contamination).fit(X)


def test_refit_without_contamination_drops_the_old_threshold():
    """The threshold belongs to the model it was computed for: a refit without
    contamination has none (it kept the old one and flagged every sample of 100 X)."""
    X = np.random.default_rng(0).normal(size=(500, 2))
    gm = GaussianMixture(1, contamination=0.05, random_state=0).fit(X)
    gm.set_params(contamination=None).fit(100 * X)
    assert not hasattr(gm, "offset_") and not hasattr(gm, "predict_outliers")
    gm.set_outlier_threshold(X, 0.1).fit(X)
    assert not hasattr(gm, "offset_")


@pytest.mark.parametrize("seed", range(8))
def test_float32_weighted_fit_threshold_equals_repetition(seed):
    """fit counts the integer weights as given (it counted them after scaling them to
    mean 1 in float32, whose rounding moved the threshold by a sample: 3 in 100 cases)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 2)).astype(np.float32)
    weights = rng.integers(1, 4, size=300)
    for contamination in (0.03, 0.05, 0.1, 0.2):
        gm = GaussianMixture(1, contamination=contamination, random_state=0).fit(
            X, sample_weight=weights)
        scores = gm.score_samples(X)
        assert gm.offset_ == _reference_threshold(scores, contamination, weights)
        assert gm.offset_ == gm.set_outlier_threshold(X, contamination, weights).offset_


@pytest.mark.parametrize("args, match", [
    (([], 0.1), r"non-empty 1-D array"),
    (([[1.0, 2.0, 3.0]], 0.4), r"non-empty 1-D array"),
    ((["a", "b"], 0.4), r"non-empty 1-D array"),
    (([1.0, np.nan, 3.0], 0.4), r"NaN or \+infinity"),
    (([1.0, np.inf, 3.0], 0.4), r"NaN or \+infinity"),
    (([1.0, 2.0, 3.0], 5.0), r"contamination=5.0 should be a float in \(0, 0.5\]"),
    (([1.0, 2.0, 3.0], "auto"), r"contamination='auto'"),
    (([1.0, 2.0], 0.1, [0, 0]), r"sample_weight sums to zero"),
    (([1.0, 2.0, 3.0], 0.1, [1, 1]), r"sample_weight.shape=\(2,\) should be"),
    (([1.0, 2.0, 3.0], 0.4, [1, -5, 1]), r"sample_weight must be >= 0"),
])
def test_outlier_threshold_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        outlier_threshold(*args)


def test_outlier_threshold_allows_zero_densities():
    assert outlier_threshold([-np.inf, 1.0, 2.0, 3.0], 0.25) == 1.0
