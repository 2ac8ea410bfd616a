"""Online fits from a stream of batches, one kernel pass per batch.

GaussianMixture: stepwise EM (Cappé & Moulines 2009). The state is the running
sufficient statistics per unit weight, ``s_t = (1 - g_t) s_{t-1} + g_t s(batch_t;
theta_{t-1})``, with step ``g_t = (t + learning_offset)^-learning_decay`` (t: batches
seen, counted in batches of this one's weight, so that uneven batches step as their
size says), and ``theta_t`` the M-step of ``s_t``. The running statistics are kept
about the current means and moved exactly to the new ones (``_em.moments_about``).

KMeans: mini-batch k-means (Sculley 2010, as scikit-learn's MiniBatchKMeans): each
centre is the weighted mean of every sample ever assigned to it, updated with the
batch's per-cluster sums from one Lloyd kernel pass.
"""
from dataclasses import dataclass

import numpy as np

from ._em import SufficientStatistics, moments_about


@dataclass
class StepwiseState:
    """Stepwise EM's state: ``statistics`` per unit weight (about the model's means) and
    ``seen``, the total weight of the batches so far."""

    statistics: SufficientStatistics
    seen: float


def step_size(seen, batch_weight, offset, decay):
    """``(t + offset)^-decay`` with ``t = seen / batch_weight`` batches seen (1 at first)."""
    return float((seen / batch_weight + offset) ** -decay) if seen > 0 else 1.0


def scaled(stats, factor):
    """The statistics times ``factor`` (the log-likelihood too)."""
    return SufficientStatistics(stats.log_likelihood * factor, stats.sum_weights * factor,
                                stats.nk * factor, stats.sums * factor,
                                stats.second * factor, stats.shift)


def moved(stats, centres, covariance_type):
    """The statistics about ``centres`` (k, d) instead of ``stats.shift``."""
    sums, second = moments_about(stats.nk, stats.sums, stats.second,
                                 np.asarray(centres, dtype=np.float64) - stats.shift,
                                 covariance_type)
    return SufficientStatistics(stats.log_likelihood, stats.sum_weights, stats.nk, sums,
                                second, np.array(centres, dtype=np.float64))


def stepwise_update(state, batch, covariance_type, offset, decay):
    """The new state after ``batch`` (statistics about the current means)."""
    per_unit = scaled(batch, 1.0 / batch.sum_weights)
    if state is None:
        return StepwiseState(per_unit, batch.sum_weights)
    step = step_size(state.seen, batch.sum_weights, offset, decay)
    running = moved(state.statistics, batch.shift, covariance_type)
    blended = scaled(running, 1.0 - step) + scaled(per_unit, step)
    return StepwiseState(blended, state.seen + batch.sum_weights)


def model_statistics(weights, means, covariances, covariance_type, reg_covar, seen):
    """A fitted model's own statistics per unit weight (what its M-step would come
    from), to continue a model fitted by ``fit`` online: ``seen`` is the weight it was
    fitted on."""
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    n_features = means.shape[1]
    if covariance_type == "full":
        second = weights[:, None, None] * (covariances - reg_covar * np.eye(n_features))
    elif covariance_type == "tied":
        second = covariances - reg_covar * np.eye(n_features)
    elif covariance_type == "diag":
        second = weights[:, None] * (covariances - reg_covar)
    else:
        second = weights * n_features * (covariances - reg_covar)
    stats = SufficientStatistics(0.0, 1.0, weights.copy(), np.zeros_like(means), second,
                                 means.copy())
    return StepwiseState(stats, float(seen))


def minibatch_centers(centers, counts, batch_sums, batch_counts):
    """Centres and counts after a batch: each centre the weighted mean of all its
    samples so far; a centre the batch left empty stays."""
    new_counts = counts + batch_counts
    hit = batch_counts > 0
    centers = np.array(centers, dtype=np.float64)
    centers[hit] = ((centers[hit] * counts[hit, None] + batch_sums[hit])
                    / new_counts[hit, None])
    return centers, new_counts
