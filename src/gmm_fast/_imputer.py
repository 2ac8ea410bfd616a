"""GaussianMixtureImputer: missing cells filled from a Gaussian mixture, as a transformer."""
import copy

import numpy as np

from ._base import EstimatorBase
from ._gaussian_mixture import GaussianMixture


class GaussianMixtureImputer(EstimatorBase):
    """Fill missing (NaN) cells with their conditional expectation under a mixture fitted
    to the observed cells (``GaussianMixture(missing_values="marginalize")``).

    A scikit-learn-style transformer, usable in a ``Pipeline`` before any estimator.

    Parameters
    ----------
    mixture : GaussianMixture or None, default=None
        The mixture to fit (copied; its ``missing_values`` is set to "marginalize").
        None: ``GaussianMixture(n_components=1)``, a single Gaussian: the classic
        conditional-mean (regression) imputation.

    Attributes
    ----------
    mixture_ : GaussianMixture
        The fitted mixture.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from gmm_fast import GaussianMixture, GaussianMixtureImputer
    >>> X = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, 5.9], [4.0, np.nan]])
    >>> GaussianMixtureImputer().fit_transform(X)[3, 1].round(1)
    np.float64(7.9)
    """

    def __init__(self, mixture=None):
        self.mixture = mixture

    def fit(self, X, y=None, sample_weight=None):
        """Fit the mixture on X's observed cells.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, NaN where missing.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights.

        Returns
        -------
        self : GaussianMixtureImputer
        """
        mixture = GaussianMixture() if self.mixture is None else copy.deepcopy(self.mixture)
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture should be a gmm_fast.GaussianMixture, got "
                            f"{type(mixture).__name__}.")
        mixture.set_params(missing_values="marginalize")
        self.mixture_ = mixture.fit(X, sample_weight=sample_weight)
        self.n_features_in_ = self.mixture_.n_features_in_
        return self

    def transform(self, X):
        """X with its NaN cells replaced by their conditional expectations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features)
        """
        self._check_fitted("mixture_")
        return self.mixture_.impute(X)

    def fit_transform(self, X, y=None, sample_weight=None):
        """``fit(X).transform(X)``."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def get_feature_names_out(self, input_features=None):
        """The input feature names (imputation keeps the columns)."""
        self._check_fitted("mixture_")
        names = getattr(self.mixture_, "feature_names_in_", None)
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        if names is not None:
            return names
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
