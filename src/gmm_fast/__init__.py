"""gmm_fast: Gaussian mixtures (EM) and Lloyd's k-means on parallel Cython kernels.

The estimators follow scikit-learn's API and give its answers, faster and in
less memory; results do not depend on the number of threads.
"""
from ._base import ConvergenceWarning, NotFittedError
from ._cpu import cpu_level, set_cpu_level, show_config, supported_cpu_level
from ._gaussian_mixture import GaussianMixture
from ._imputer import GaussianMixtureImputer
from ._kmeans import KMeans, kmeans_plusplus
from ._openmp import openmp_enabled
from ._outliers import outlier_threshold
from ._persistence import load, save
from ._selection import ModelSelection, select_model

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "GaussianMixture",
    "GaussianMixtureImputer",
    "KMeans",
    "NotFittedError",
    "ModelSelection",
    "cpu_level",
    "kmeans_plusplus",
    "load",
    "openmp_enabled",
    "outlier_threshold",
    "save",
    "select_model",
    "set_cpu_level",
    "show_config",
    "supported_cpu_level",
]
