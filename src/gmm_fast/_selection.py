"""Model selection: fit a grid of Gaussian mixtures and keep the best by BIC, AIC or ICL.

The grid is ``n_components x covariance_types``. Work is shared where it is sound:
for each ``n_components`` the k-means initialisations are computed once and every
covariance type starts EM from the same labels (as ``init_params="kmeans"`` would,
each from its own k-means). A fit that fails (a covariance that is not positive
definite, too few samples) becomes a row marked failed instead of stopping the grid.
"""
import math
import numbers
import time
import warnings
from typing import NamedTuple

import numpy as np

from ._base import ConvergenceWarning, _feature_names
from ._covariances import COVARIANCE_TYPES as _COVARIANCE_HELPERS
from ._dask import dataframe_names, is_dask_collection
from ._gaussian_mixture import GaussianMixture
from ._hc import hc_partitions
from ._kmeans import KMeans
from ._missing import MISSING_VALUES, check_missing_rows, mean_imputed
from ._threads import sequential_blas
from ._validation import (check_array, check_nonnegative_float, check_positive_int,
                          check_random_state, check_sample_weight, mean_weight)

COVARIANCE_TYPES = tuple(_COVARIANCE_HELPERS)  # ("full", "tied", "diag", "spherical")
CRITERIA = ("bic", "aic", "icl")
COLUMNS = ("n_components", "covariance_type", "log_likelihood", "n_parameters", "bic", "aic",
           "icl", "converged", "n_iter", "start", "starts_disagree", "refined", "failed",
           "reason")
STARTS = ("hc", "kmeans")
_EPS = 10 * np.finfo(np.float64).eps


def n_free_parameters(n_components, n_features, covariance_type):
    """Free parameters of a mixture: means, weights (k - 1) and covariances."""
    covariance = {"full": n_components * n_features * (n_features + 1) // 2,
                  "tied": n_features * (n_features + 1) // 2,
                  "diag": n_components * n_features,
                  "spherical": n_components}[covariance_type]
    return int(covariance + n_components * n_features + n_components - 1)


class LabelMoments(NamedTuple):
    """Weighted counts, means and scatter matrices of hard labels (float64): what the
    start of every covariance type is made from, so computed once per start and k."""

    nk: np.ndarray
    means: np.ndarray
    scatter: np.ndarray


def label_moments(X, sample_weight, labels, n_components):
    """The ``LabelMoments`` of ``labels`` over X's rows, in plain numpy."""
    n_features = X.shape[1]
    # Scaled to mean 1, as GaussianMixture does, so that the _EPS floor stays negligible.
    sample_weight = sample_weight / mean_weight(sample_weight)
    nk = np.bincount(labels, weights=sample_weight, minlength=n_components) + _EPS
    means = np.zeros((n_components, n_features))
    scatter = np.zeros((n_components, n_features, n_features))
    for k in range(n_components):
        members = labels == k
        rows = X[members].astype(np.float64)
        w = sample_weight[members].astype(np.float64)
        means[k] = w @ rows / nk[k]
        centered = rows - means[k]
        scatter[k] = (w[:, None] * centered).T @ centered
    return LabelMoments(nk, means, scatter)


def _initial_parameters(moments, covariance_type, reg_covar):
    """Weights, means and covariances (+ reg_covar) of a start's ``LabelMoments``."""
    nk, means, scatter = moments
    means = means.copy()  # (each type's model gets its own; the moments are shared)
    n_features = means.shape[1]
    weights = nk / nk.sum()
    eye = np.eye(n_features)
    if covariance_type == "full":
        covariances = scatter / nk[:, None, None] + reg_covar * eye
    elif covariance_type == "tied":
        covariances = scatter.sum(axis=0) / nk.sum() + reg_covar * eye
    else:
        diag = np.diagonal(scatter, axis1=1, axis2=2) / nk[:, None] + reg_covar
        covariances = diag if covariance_type == "diag" else diag.mean(axis=1)
    # GaussianMixture's own check, said in the user's terms (it would name its
    # covariances_init, which the user of select_model never passed).
    try:
        _COVARIANCE_HELPERS[covariance_type].check(covariances,
                                                   "The k-means start's covariance")
    except ValueError as exc:
        raise ValueError(f"{exc} Clusters of identical rows? Raise reg_covar (now "
                         f"{reg_covar:g}).") from None
    return weights, means, covariances


def _entropy(resp, sample_weight):
    """``-sum_i w_i sum_k r_ik log r_ik`` (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(resp > 0, resp * np.log(resp), 0.0)
    return float(-(sample_weight @ terms.sum(axis=1, dtype=np.float64)))


def _criteria(model, X, sample_weight):
    """Log-likelihood, free parameters, BIC, AIC and ICL of a fitted model on X."""
    n_components, n_features = model.means_.shape
    weights = sample_weight.astype(np.float64)
    n_parameters = n_free_parameters(n_components, n_features, model.covariance_type)
    # score_samples and predict_proba from one check and one pass over X
    log_norm, resp, _ = model._score(model._validated(X), resp=True)
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite: a failed row, said so
        log_likelihood = float(weights @ log_norm.astype(np.float64))
        n = float(weights.sum())
        bic = -2 * log_likelihood + n_parameters * math.log(n)
        aic = -2 * log_likelihood + 2 * n_parameters
        icl = bic + 2 * _entropy(resp.astype(np.float64), weights)
    return dict(log_likelihood=log_likelihood, n_parameters=n_parameters, bic=bic, aic=aic,
                icl=icl)


_FIT_ERRORS = (ValueError, np.linalg.LinAlgError, FloatingPointError)


def _fit_scored(X, sample_weight, n_components, covariance_type, tol, max_iter, init, common):
    """A GaussianMixture fitted from the given start, and its criteria on X."""
    model = GaussianMixture(n_components, covariance_type=covariance_type, tol=tol,
                            max_iter=max_iter, **init, **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, sample_weight=sample_weight)
    return model, _criteria(model, X, sample_weight)


def _failed_row(n_components, covariance_type, reason):
    row = {name: math.nan for name in COLUMNS}
    row.update(n_components=n_components, covariance_type=covariance_type, n_parameters=-1,
               converged=False, n_iter=0, start="", starts_disagree=False, refined=False,
               failed=True,
               reason=reason)
    return row


def _check_grid(n_components, covariance_types, criterion):
    if isinstance(n_components, numbers.Integral):
        n_components = [n_components]
    try:
        ks = [check_positive_int(k, "n_components") for k in n_components]
    except TypeError:
        raise TypeError(f"n_components should be an int or an iterable of ints, got "
                        f"{n_components!r}.") from None
    if not ks:
        raise ValueError("n_components is empty: give at least one number of components.")
    if isinstance(covariance_types, str):
        covariance_types = [covariance_types]
    try:
        covariance_types = list(covariance_types)
    except TypeError:
        raise TypeError(f"covariance_types should be a str or an iterable of str, got "
                        f"{covariance_types!r}.") from None
    for covariance_type in covariance_types:
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_types contains {covariance_type!r}; each should be "
                             "one of 'full', 'tied', 'diag', 'spherical'.")
    if not covariance_types:
        raise ValueError("covariance_types is empty: give at least one covariance type.")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} should be one of 'bic', 'aic', 'icl'.")
    return list(dict.fromkeys(ks)), list(dict.fromkeys(covariance_types))


class GridData:
    """The data every cell of a grid fits: X and its weights, and the rows (and weights)
    the starts see (the complete or imputed rows with ``missing_values="marginalize"``)."""

    def __init__(self, X, sample_weight, start_X, start_weight):
        self.X, self.sample_weight = X, sample_weight
        self.start_X, self.start_weight = start_X, start_weight
        with np.errstate(over="ignore"):  # (inf: such a grid's rows fail, said so)
            self.n_weight = float(sample_weight.sum(dtype=np.float64))


def prepared_data(X, sample_weight, missing_values, ks):
    """Checked X and weights as a ``GridData`` (select_model's one validation of X)."""
    X = check_array(X, min_samples=2, allow_nan=missing_values == "marginalize")
    sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
    start_X, start_weight = X, sample_weight
    if missing_values == "marginalize" and np.isnan(X).any():
        check_missing_rows(X)
        complete = ~np.isnan(X).any(axis=1)
        if np.count_nonzero(sample_weight[complete]) >= 10 * max(ks):
            start_X, start_weight = X[complete], sample_weight[complete]
        else:
            start_X = mean_imputed(X)
    return GridData(X, sample_weight, start_X, start_weight)


def kmeans_seeds(random_state, ks, n_init):
    """``k -> seeds`` of the k-means starts: one number drawn from ``random_state``,
    then a seed per (k, start) from it, so that a start depends on neither the order
    the cells run in (one after the other here, or at once on a cluster) nor the other
    numbers of components in the grid."""
    base = int(random_state.randint(np.iinfo(np.int32).max))
    # (>> 1: a non-negative int32, as a seed from randint would be)
    return {k: [int(np.random.SeedSequence([base, k, i]).generate_state(1)[0] >> 1)
                for i in range(n_init)] for k in ks}


def hc_starts(data, ks, random_state):
    """``k -> labels`` of the hc start: one hierarchy for the whole grid, cut at each k."""
    start_X = data.start_X
    return hc_partitions(start_X, [k for k in ks if k <= start_X.shape[0]],
                         data.start_weight, random_state)


def kmeans_starts(data, k, seeds, n_threads):
    """``[(name, labels)]``: a k-means start of k clusters per seed."""
    named = []
    with warnings.catch_warnings():
        # Fewer distinct clusters than k (duplicates) is fine for a start.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i, seed in enumerate(seeds):
            name = "kmeans" if len(seeds) == 1 else f"k-means {i + 1}/{len(seeds)}"
            named.append((name, KMeans(k, n_init=1, random_state=seed, n_threads=n_threads).fit(
                data.start_X, sample_weight=data.start_weight).labels_))
    return named


def cell_starts(hc_labels, kmeans, k):
    """The named starts of a cell of k components: hc's first, then the k-means ones."""
    named = [("hc", hc_labels[k])] if hc_labels is not None and k in hc_labels else []
    return named + list(kmeans or [])


class StartFit(NamedTuple):
    """One start of a cell, run by EM: its ``model`` and ``scores`` (``_criteria``), or
    None and the reason when the fit failed; EM iterations and seconds so far."""

    name: str
    model: object
    scores: object
    n_iter: int
    seconds: float


def fit_start(data, k, covariance_type, name, labels, settings):
    """One start of a cell run by EM to ``tol``: a ``StartFit``. ``labels``: the start's
    hard labels, or their ``LabelMoments`` (shared by the covariance types of a k)."""
    start_time = time.perf_counter()
    try:
        moments = (labels if isinstance(labels, LabelMoments)
                   else label_moments(data.start_X, data.start_weight, labels, k))
        weights, means, covariances = _initial_parameters(moments, covariance_type,
                                                          settings["reg_covar"])
        model, scores = _fit_scored(
            data.X, data.sample_weight, k, covariance_type, settings["tol"],
            settings["max_iter"],
            dict(weights_init=weights, means_init=means, covariances_init=covariances),
            settings["common"])
    except _FIT_ERRORS as exc:
        model, scores = None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if model is not None and not all(math.isfinite(scores[criterion])
                                     for criterion in ("bic", "aic", "icl")):
        model, scores = None, "non-finite log-likelihood (degenerate data or components)."
    n_iter = 0 if model is None else int(model.n_iter_)
    return StartFit(name, model, scores, n_iter, time.perf_counter() - start_time)


def best_start(k, covariance_type, fitted, reason, tol, n_weight):
    """``(row, model)`` of a cell from its starts' ``StartFit``s, in the starts' order:
    the start of highest log-likelihood (model None and a failed row, with the last
    failure's reason, when every start failed). The starts disagree when their mean
    log-likelihoods differ by more than ``tol`` per unit weight."""
    succeeded = [fit for fit in fitted if fit.model is not None]
    for fit in fitted:
        if fit.model is None:
            reason = fit.scores
    if not succeeded:
        row, model = _failed_row(k, covariance_type, reason or "fit failed."), None
    else:
        best = max(succeeded, key=lambda fit: fit.scores["log_likelihood"])  # (the first)
        reached = [fit.scores["log_likelihood"] for fit in succeeded]
        model = best.model
        row = dict(n_components=k, covariance_type=covariance_type,
                   converged=bool(model.converged_), n_iter=best.n_iter, start=best.name,
                   starts_disagree=bool(max(reached) - min(reached) > tol * n_weight),
                   refined=False, failed=False, reason="", **best.scores)
    row["seconds"] = float(sum(fit.seconds for fit in fitted))
    return row, model


def contenders(rows, criterion, final_margin):
    """Rows whose criterion at ``tol`` is within ``final_margin`` of the least."""
    valid = [i for i, row in enumerate(rows) if not row["failed"]]
    if not valid:
        return []
    least = min(rows[i][criterion] for i in valid)
    return [i for i in valid if rows[i][criterion] <= least + final_margin]


def refine_start(data, fit, settings):
    """A start's fit run on from where it stopped to ``final_tol``: a ``StartFit``, the
    start's own when the run fails or ends lower (EM only raises the likelihood)."""
    if fit.model is None:
        return fit
    start_time = time.perf_counter()
    model, scores = fit.model, fit.scores
    try:
        refined, refined_scores = _fit_scored(
            data.X, data.sample_weight, model.n_components, model.covariance_type,
            settings["final_tol"], settings["final_max_iter"],
            dict(weights_init=model.weights_, means_init=model.means_,
                 covariances_init=model.covariances_), settings["common"])
    except _FIT_ERRORS:
        refined = None
    seconds = fit.seconds + time.perf_counter() - start_time
    if (refined is None or not all(math.isfinite(v) for v in refined_scores.values())
            or refined_scores["log_likelihood"] < scores["log_likelihood"]):
        return fit._replace(seconds=seconds)
    return StartFit(fit.name, refined, refined_scores, fit.n_iter + int(refined.n_iter_),
                    seconds)


def refined_row(row, refined, tol, n_weight):
    """A contender's ``(row, model)`` once every start ran on to ``final_tol``: the best
    converged start (the start ahead at ``tol`` is not always ahead when converged: 7
    of 36 cells on faithful), its ``starts_disagree`` decided on the converged values
    (faithful's tied/3 starts are 0.56 apart at ``tol``, 1e-6 converged)."""
    new, model = best_start(row["n_components"], row["covariance_type"], refined,
                            row["reason"], tol, n_weight)
    new["refined"] = True
    return new, model


class ModelSelection:
    """The result of ``select_model``: the best fitted model and the table of the grid.

    Attributes
    ----------
    best_model : GaussianMixture
        The fitted model of lowest criterion.
    best_index : int
        Its row in ``rows``.
    criterion : {"bic", "aic", "icl"}
    rows : list of dict
        One per (n_components, covariance_type), with the keys ``n_components``,
        ``covariance_type``, ``log_likelihood`` (``sum_i w_i log p(x_i)``),
        ``n_parameters``, ``bic``, ``aic``, ``icl``, ``converged``, ``n_iter``,
        ``start`` (which start won: "hc", "kmeans" or "k-means i/n"),
        ``starts_disagree`` (the starts' log-likelihoods differ by more than ``tol``
        per unit weight, converged ones in refined rows: more starts may matter),
        ``refined`` (run on to ``final_tol``), ``failed``, ``reason`` (why a fit
        failed, else "") and ``seconds`` (the cell's fit time). Failed rows have NaN
        criteria.
    models : list of GaussianMixture or None
        The fitted model of every row (None for failed rows), e.g. to inspect a cell
        that was not chosen.
    """

    def __init__(self, best_model, best_index, criterion, rows, models=None):
        self.best_model = best_model
        self.best_index = best_index
        self.criterion = criterion
        self.rows = rows
        self.models = models

    @property
    def best_params(self):
        """``{"n_components": ..., "covariance_type": ...}`` of the best model."""
        row = self.rows[self.best_index]
        return {"n_components": row["n_components"], "covariance_type": row["covariance_type"]}

    def columns(self):
        """The table as a dict of columns (numpy arrays), e.g. for ``pandas.DataFrame``."""
        return {name: np.array([row[name] for row in self.rows]) for name in COLUMNS}

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (pandas must be installed)."""
        import pandas as pd
        return pd.DataFrame({name: [row[name] for row in self.rows] for name in COLUMNS})

    def format(self):
        """The table as aligned text, the best row marked with ``*``."""
        header = ["", "k", "covariance", "log-likelihood", "params", "BIC", "AIC", "ICL",
                  "converged", "iter", "start"]
        lines = []
        for index, row in enumerate(self.rows):
            mark = "*" if index == self.best_index else ""
            if row["failed"]:
                lines.append([mark, str(row["n_components"]), row["covariance_type"],
                              "failed: " + row["reason"]])
                continue
            lines.append([mark, str(row["n_components"]), row["covariance_type"],
                          f"{row['log_likelihood']:.4f}", str(row["n_parameters"]),
                          f"{row['bic']:.4f}", f"{row['aic']:.4f}", f"{row['icl']:.4f}",
                          "yes" if row["converged"] else "no", str(row["n_iter"]),
                          row["start"] + (" !" if row["starts_disagree"] else "")])
        full = [header] + [line for line in lines if len(line) == len(header)]
        widths = [max(len(line[i]) for line in full) for i in range(len(header))]
        for line in lines:  # the first three cells of failed rows count too
            widths[:3] = [max(w, len(cell)) for w, cell in zip(widths[:3], line[:3])]
        text = []
        for line in [header] + lines:
            cells = [cell.ljust(widths[i]) if i in (0, 2, 10) else cell.rjust(widths[i])
                     for i, cell in enumerate(line[:len(header)])]
            if len(line) == 4:  # a failed row: the reason spans the remaining columns
                cells[3] = line[3]
            text.append("  ".join(cells).rstrip())
        best = self.rows[self.best_index]
        text.append(f"* best by {self.criterion.upper()} (lower is better): "
                    f"{best['n_components']} components, covariance_type="
                    f"{best['covariance_type']!r}.")
        if any(row["starts_disagree"] for row in self.rows):
            text.append("! the starts of this cell reached log-likelihoods further apart than "
                        "tol: more starts (n_init) may find a better fit.")
        return "\n".join(text)

    def __str__(self):
        return self.format()

    def __repr__(self):
        return (f"ModelSelection(best_params={self.best_params!r}, criterion="
                f"{self.criterion!r}, n_rows={len(self.rows)})")


def select_model(X, n_components=range(1, 10), covariance_types=COVARIANCE_TYPES,
                 criterion="bic", *, starts=STARTS, n_init=1, random_state=None,
                 sample_weight=None, tol=1e-3, final_tol=1e-8, final_max_iter=1000, final_margin=10.0,
                 reg_covar=1e-6, max_iter=100, n_threads=None, sort_components=None,
                 callback=None, missing_values="error", client=None):
    """Fit Gaussian mixtures over a grid and pick the best by an information criterion.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    n_components : int or iterable of int, default=range(1, 10)
        Numbers of components to try.
    covariance_types : str or iterable of str, default=("full", "tied", "diag", \
            "spherical")
        Covariance types to try.
    criterion : {"bic", "aic", "icl"}, default="bic"
        What to minimise.
    starts : iterable of {"hc", "kmeans"}, default=("hc", "kmeans")
        EM starts per grid cell, from hard labels shared by all covariance types:
        "hc" the partition of model-based hierarchical clustering (Fraley 1998, as
        ``init_params="hc"``; one hierarchy for the whole grid, cut at each k),
        "kmeans" ``n_init`` k-means runs per ``n_components``. Each start runs EM to
        ``tol``; the one of highest log-likelihood is kept (in a contending cell,
        after every start ran on to ``final_tol``). The table's ``start`` column names it ("hc", "kmeans", or
        "k-means i/n" when ``n_init > 1``).
    n_init : int, default=1
        k-means starts per grid cell.
    random_state : int, RandomState instance or None, default=None
        Seed of the k-means initialisations (one number is drawn from it, and from
        that a seed per (n_components, start): a cell's starts do not depend on the
        rest of the grid) and of hc's sample of rows above ``_hc.HC_MAX_SAMPLES`` = 2000.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights: the log-likelihood is ``sum_i w_i log p(x_i)`` and the
        sample size in BIC is ``sum_i w_i``.
    tol : float, default=1e-3
        EM's convergence threshold for every start (change of the mean per-sample
        log-likelihood). Starts whose log-likelihoods differ by more than ``tol``
        per unit weight mark the row ``starts_disagree``.
    final_tol : float or None, default=1e-8
        After the grid, every start of every cell whose criterion is within
        ``final_margin`` of the least runs EM on to this threshold and the best
        converged one is kept, so that the contenders are compared converged (their
        rows say ``refined``, and their ``starts_disagree`` compares the converged
        starts; None: no such run). The other rows stay at ``tol``.
    final_max_iter : int, default=1000
        EM iterations of that run.
    final_margin : float, default=10.0
        Which cells are contenders (in the criterion's units; 10 is "very strong"
        evidence on Kass and Raftery's scale of BIC differences).
    reg_covar : float, default=1e-6
        Added to the covariances' diagonals (also of the k-means starts).
    max_iter : int, default=100
        EM iterations per start.
    n_threads : int or None, default=None
        The most OpenMP threads a pass of the k-means and EM kernels may use (small
        passes use one); results do not depend on it.
    sort_components : {None, "weights", "means"}, default=None
        Canonical component order of every fitted model.
    callback : callable, default=None
        Called as ``callback(done, total, row)`` after each grid cell (progress;
        BLAS runs on one thread until the grid is done).
    missing_values : {"error", "marginalize"}, default="error"
        As ``GaussianMixture``'s: "marginalize" fits rows with NaN cells by their
        observed cells (the log-likelihood in the criteria is the observed-data
        one); the k-means starts then run on the complete rows, or on mean-imputed
        rows when fewer than ``10 * max(n_components)`` rows are complete.
    client : dask.distributed.Client or None, default=None
        Run the grid's cells in parallel on this cluster, one task per start of
        each cell (see Notes). A dask array or dask DataFrame X runs on ``client``, else on the
        active client (``distributed.get_client()``); without one it is an error.

    Returns
    -------
    selection : ModelSelection
        ``best_model`` (fitted ``GaussianMixture``), ``best_params``, the table
        ``rows`` (also ``format()``, ``columns()``, ``to_pandas()``) and every row's
        fitted model, ``models``.

    Raises
    ------
    ValueError
        When every fit of the grid failed (the reasons are in the message).

    Notes
    -----
    With ``L = sum_i w_i log p(x_i)``, ``p`` free parameters (``n_free_parameters``)
    and ``n = sum_i w_i``:

    - ``BIC = -2 L + p log(n)`` in scikit-learn's sign: **lower is better**. mclust
      reports ``2 L - p log(n)`` (= -BIC, higher is better);
    - ``AIC = -2 L + 2 p``;
    - ``ICL = BIC + 2 * E`` with the entropy of the responsibilities
      ``E = -sum_i w_i sum_k r_ik log r_ik`` (also lower is better).

    Ties go to the earlier row (fewer components).

    On a cluster (``client``, or a dask X) X is sent to the workers once (an in-memory X
    is scattered, a dask X is joined from its blocks on a worker: it must fit in one
    worker's memory), the hc and k-means starts and every cell run as tasks, and only
    rows and fitted models come back; the table and the chosen model are those of
    the same call without a cluster (the k-means starts are seeded from
    ``random_state`` before the grid runs, so they do not depend on the order the
    cells run in). A kernel in a task uses ``n_threads`` if given, else one thread.
    ``callback`` is then called in the order the cells finish.

    The defaults (the hc and one k-means start per cell, both run on to
    ``final_tol=1e-8`` in the contending cells) find mclust's choices and converged
    log-likelihoods on R's ``faithful`` (tied, 3 components, -1126.3159) and on iris
    (full, 2 components, -214.3547); with one k-means start and ``tol=1e-3`` alone, faithful's tied
    3-component fit stops in a worse optimum and the grid picks 2 full components.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm_fast import select_model
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(8, 1, (200, 2))])
    >>> selection = select_model(X, n_components=[1, 2, 3], covariance_types=["spherical"],
    ...                          random_state=0)
    >>> selection.best_params
    {'n_components': 2, 'covariance_type': 'spherical'}
    """
    if missing_values not in MISSING_VALUES:
        raise ValueError(f"missing_values={missing_values!r} should be one of "
                         f"{', '.join(map(repr, MISSING_VALUES))}.")
    ks, covariance_types = _check_grid(n_components, covariance_types, criterion)
    n_init = check_positive_int(n_init, "n_init")
    starts = [starts] if isinstance(starts, str) else list(starts)
    if not starts or any(start not in STARTS for start in starts):
        raise ValueError(f"starts={starts!r} should be a non-empty subset of 'hc', 'kmeans'.")
    if final_tol is not None:
        check_nonnegative_float(final_tol, "final_tol")
        check_positive_int(final_max_iter, "final_max_iter")
        check_nonnegative_float(final_margin, "final_margin")
    settings = dict(tol=tol, max_iter=max_iter, reg_covar=reg_covar, final_tol=final_tol,
                    final_max_iter=final_max_iter,
                    common=dict(reg_covar=reg_covar, n_threads=n_threads,
                                sort_components=sort_components,
                                missing_values=missing_values))
    random_state = check_random_state(random_state)
    seeds = kmeans_seeds(random_state, ks, n_init) if "kmeans" in starts else None
    grid = dict(ks=ks, covariance_types=covariance_types, starts=starts, seeds=seeds,
                random_state=random_state, settings=settings, criterion=criterion,
                final_margin=final_margin, callback=callback)
    # (the grid fits plain arrays; the models get the names)
    names = dataframe_names(X) if is_dask_collection(X) else _feature_names(X)
    if client is not None or is_dask_collection(X):
        from ._selection_dask import select_on_cluster
        rows, models = select_on_cluster(client, X, sample_weight, missing_values, **grid)
    else:
        data = prepared_data(X, sample_weight, missing_values, ks)
        rows, models = _select_here(data, **grid)
    valid = [i for i, row in enumerate(rows) if not row["failed"]]
    if not valid:
        reasons = sorted({row["reason"] for row in rows})
        raise ValueError("Every fit of the model-selection grid failed: " + " | ".join(reasons))
    if names is not None:
        for model in models:
            if model is not None:
                model.feature_names_in_ = names
    best_index = min(valid, key=lambda i: (rows[i][criterion], i))
    return ModelSelection(models[best_index], best_index, criterion, rows, models)


def _select_here(data, ks, covariance_types, starts, seeds, random_state, settings, criterion,
                 final_margin, callback):
    """The grid's rows and models, cell after cell in this process."""
    n_samples = data.X.shape[0]
    n_threads = settings["common"]["n_threads"]
    # One hierarchy for the whole grid, cut at each k.
    hc_labels = hc_starts(data, ks, random_state) if "hc" in starts else None
    total = len(ks) * len(covariance_types)
    rows, models, cell_fits = [], [], []
    # BLAS limited once for the grid: each fit and score would set and restore the
    # limit (~20 us each, 2 x 36 times on the default grid).
    with sequential_blas():
        for k in ks:
            named, reason = [], ""
            if k > n_samples:
                reason = f"n_samples={n_samples} should be >= n_components={k}."
            else:
                kmeans = (kmeans_starts(data, k, seeds[k], n_threads) if seeds is not None
                          else None)
                # (one pass over the rows per start, not one per covariance type)
                named = [(name, label_moments(data.start_X, data.start_weight, labels, k))
                         for name, labels in cell_starts(hc_labels, kmeans, k)]
            for covariance_type in covariance_types:
                fitted = [fit_start(data, k, covariance_type, name, labels, settings)
                          for name, labels in named]
                row, model = best_start(k, covariance_type, fitted, reason, settings["tol"],
                                        data.n_weight)
                rows.append(row)
                models.append(model)
                cell_fits.append(fitted)
                if callback is not None:
                    callback(len(rows), total, row)
        if settings["final_tol"] is not None:
            for i in contenders(rows, criterion, final_margin):
                refined = [refine_start(data, fit, settings) for fit in cell_fits[i]]
                rows[i], models[i] = refined_row(rows[i], refined, settings["tol"],
                                                 data.n_weight)
    return rows, models
