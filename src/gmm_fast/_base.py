"""What both estimators share: scikit-learn's parameter protocol and the fit/predict data checks.

scikit-learn is not a dependency, so this module speaks its conventions itself:
``get_params``/``set_params`` read the ``__init__`` signature, ``n_features_in_`` and
``feature_names_in_`` are checked at predict time with sklearn's messages, and
``__sklearn_tags__`` imports sklearn only when sklearn itself asks for the tags.
"""
import inspect
import sys
import warnings

import numpy as np

from ._validation import check_array


class NotFittedError(ValueError, AttributeError):
    """Raised when a method needs a fitted model; like sklearn's, a ValueError and AttributeError."""


class ConvergenceWarning(UserWarning):
    """A fit that may not be what was wanted: EM stopped at ``max_iter`` before
    meeting ``tol``, or k-means found fewer distinct clusters than asked for."""


_SKLEARN_TWINS = {}


def sklearn_compatible(cls):
    """``cls``, or once sklearn is imported, a subclass of it and of sklearn's namesake.

    Code written for scikit-learn catches ``sklearn.exceptions.NotFittedError`` or
    filters its ``ConvergenceWarning``; raising the twin keeps that code working
    without importing sklearn (1.4 s) ourselves. Anyone naming sklearn's class has
    imported it, so the check on ``sys.modules`` is enough.
    """
    exceptions = sys.modules.get("sklearn.exceptions")
    if exceptions is None:
        return cls
    if cls not in _SKLEARN_TWINS:
        _SKLEARN_TWINS[cls] = type(cls.__name__, (cls, getattr(exceptions, cls.__name__)),
                                   {"__module__": cls.__module__, "__doc__": cls.__doc__})
    return _SKLEARN_TWINS[cls]


def _feature_names(X):
    """The column names of a DataFrame whose columns are all strings, else None."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "iloc"):
        return None
    names = np.asarray(columns, dtype=object)
    if len(names) and all(isinstance(name, str) for name in names):
        return names
    return None


class EstimatorBase:
    """Parameters, representation and input checks in scikit-learn's manner."""

    _estimator_type = None

    @classmethod
    def _param_names(cls):
        signature = inspect.signature(cls.__init__)
        return sorted(p.name for p in signature.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep=True):
        """Get the parameters of this estimator.

        Parameters
        ----------
        deep : bool, default=True
            Ignored; present for scikit-learn compatibility (no sub-estimators).

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set the parameters of this estimator.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : object
            The estimator.
        """
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {valid!r}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for name, value in self.get_params().items():
            default = defaults.get(name)
            same = value is default or (
                type(value) is type(default) and not isinstance(value, np.ndarray)
                and value == default)
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, TargetTags
        return Tags(estimator_type=self._estimator_type,
                    target_tags=TargetTags(required=False))

    def _check_fitted(self, attribute):
        if not hasattr(self, attribute):
            raise sklearn_compatible(NotFittedError)(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def _check_fit_data(self, X, min_samples=1, **finite):
        """Validate training data and remember its width and column names (``finite``:
        ``check_array``'s NaN options)."""
        names = _feature_names(X)
        X = check_array(X, min_samples=min_samples, **finite)
        self.n_features_in_ = X.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return X

    def _check_predict_data(self, X, dtype, **finite):
        """Validate new data against what ``fit`` saw; computed in the model's ``dtype``
        (``finite``: ``check_array``'s NaN options)."""
        names = _feature_names(X)
        fitted_names = getattr(self, "feature_names_in_", None)
        cls = type(self).__name__
        if names is not None and fitted_names is None:
            warnings.warn(f"X has feature names, but {cls} was fitted without feature names",
                          UserWarning, stacklevel=3)
        elif names is None and fitted_names is not None:
            warnings.warn(f"X does not have valid feature names, but {cls} was fitted with "
                          "feature names", UserWarning, stacklevel=3)
        elif names is not None and not np.array_equal(names, fitted_names):
            raise ValueError(
                "The feature names should match those that were passed during fit.\n"
                f"Fitted with: {list(fitted_names)}\nGot: {list(names)}"
            )
        X = check_array(X, dtype=dtype, **finite)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {cls} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X
