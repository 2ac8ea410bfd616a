"""Workloads, data and the implementations compared, for KMeans and GaussianMixture.

Every implementation of a workload starts from the same initial parameters
(centres; or weights, means and precisions) and is asked for a fixed number of
iterations (``tol=0``); ``make_*_fit`` returns a ``fit(max_iter) -> n_iter``
callable for ``harness.side_by_side``, or raises
``harness.Unavailable`` with the reason.
"""
import numpy as np

from harness import N_THREADS, Unavailable, limited

# Full workloads (issues 2 and 3), as (n_samples, n_features, n_components).
KMEANS_WORKLOADS = [(1_000_000, 2, 8), (1_000_000, 16, 64), (200_000, 128, 256),
                    (100_000, 784, 10)]
GMM_WORKLOADS = [(100_000, 2, 4), (200_000, 16, 16), (1_000_000, 8, 8), (50_000, 64, 32)]
GMM_PEER_COVARIANCES = ("full", "diag")      # daal4py em_gmm offers full and diagonal only
GMM_SKLEARN_ONLY_COVARIANCES = ("tied", "spherical")

# Quick workloads (CI, < 3 minutes on 2 cores with the sklearn reference).
QUICK_KMEANS_WORKLOADS = [(200_000, 2, 8), (200_000, 16, 64), (30_000, 128, 256)]
QUICK_GMM_WORKLOADS = [(50_000, 16, 16), (100_000, 8, 8)]

# Sparse KMeans (issue 14 part 3): TF-IDF-shaped CSR, (n_samples, n_features, n_clusters),
# SPARSE_DENSITY of the entries non-zero, rows L2-normalised. Against scikit-learn's Lloyd
# loop only: its estimator adds validation alone, and one of its iterations takes ~10 s at
# k=256 (float64, AVX2 Zen 3), so each extra peer adds minutes; faiss and oneDAL's KMeans
# take dense data.
SPARSE_KMEANS_WORKLOADS = [(100_000, 20_000, 32), (100_000, 20_000, 256)]
SPARSE_DENSITY = 0.003
SPARSE_KMEANS_PEERS = ("sklearn-loop",)

# "sklearn-loop" and "onedal": the same libraries' per-iteration work without their
# estimators' per-fit costs (scikit-learn copies and centres X, ~0.2 s at d=784; the
# sklearnex wrapper validates it), which made the N / N+M difference noisy there.
KMEANS_PEERS = ("sklearn", "sklearn-loop", "faiss", "sklearnex", "onedal")
GMM_PEERS = ("sklearn", "daal4py")
DTYPES = ("float64", "float32")


def case_key(model, n, d, k, dtype, covariance_type=None):
    """The name of one workload in tables, JSON output and thresholds.json."""
    cov = f" {covariance_type}" if covariance_type else ""
    return f"{model} n={n} d={d} k={k}{cov} {dtype}"


def make_data(n_samples, n_features, n_components, dtype, seed=0):
    """Overlapping Gaussian blobs with a random linear tilt, generated chunk by chunk.

    The blobs overlap: centres ~ N(0, 4 / n_features) per feature, so two
    centres are about 2.8 blob widths apart whatever the dimension, and the
    spread is tilted by ``I + 0.5 / sqrt(d) G``. Lloyd and EM then keep moving
    for 25+ iterations on every workload (checked with scikit-learn): no run
    stops before ``max_iter`` (well-separated blobs converge in 4 iterations
    at d=784).
    """
    rng = np.random.default_rng(seed)
    centers = 2.0 / np.sqrt(n_features) * rng.standard_normal((n_components, n_features))
    tilt = np.eye(n_features) + 0.5 / np.sqrt(n_features) * rng.standard_normal(
        (n_features, n_features))
    X = np.empty((n_samples, n_features), dtype=dtype)
    step = 65536
    for start in range(0, n_samples, step):
        stop = min(start + step, n_samples)
        labels = rng.integers(n_components, size=stop - start)
        X[start:stop] = centers[labels] + rng.standard_normal((stop - start, n_features)) @ tilt
    return X


def make_sparse_data(n_samples, n_features, density, dtype, seed=0):
    """Random CSR shaped like TF-IDF: ``density`` of the entries, at uniformly random
    columns, uniform(0, 1) values, each row scaled to unit L2 norm (empty rows kept)."""
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    X = sp.random(n_samples, n_features, density=density, format="csr", dtype=np.float64,
                  random_state=rng)
    X.data[:] = rng.random(X.nnz)
    row_nnz = np.diff(X.indptr)
    norms = np.sqrt(np.bincount(np.repeat(np.arange(n_samples), row_nnz), weights=X.data ** 2,
                                minlength=n_samples))
    X.data /= np.repeat(norms, row_nnz)
    return X.astype(dtype)


def _read_only(*arrays):
    """The shared starting point, read-only: a peer that updated it in place would move
    every later fit's start (scikit-learn's Lloyd loop updates its centres in place)."""
    for array in arrays:
        array.setflags(write=False)
    return arrays


def initial_centers(X, n_clusters, seed=1):
    """``n_clusters`` distinct rows of X, in X's dtype (the same start for every peer)."""
    rows = np.random.default_rng(seed).choice(X.shape[0], size=n_clusters, replace=False)
    centers = X[np.sort(rows)]
    centers = centers.toarray() if hasattr(centers, "toarray") else centers  # (sparse X)
    return _read_only(np.ascontiguousarray(centers))[0]


def initial_gmm_parameters(X, n_components, covariance_type, seed=1):
    """Uniform weights, means on distinct rows, isotropic precisions 1 / mean variance.

    Returns ``weights, means, precisions`` in scikit-learn's shapes for
    ``covariance_type``, in float64.
    """
    means = initial_centers(X, n_components, seed).astype(np.float64)
    weights = np.full(n_components, 1.0 / n_components)
    variance = float(np.mean(np.var(X[:100_000], axis=0, dtype=np.float64)))
    n_features = X.shape[1]
    precisions = {
        "full": np.tile(np.eye(n_features) / variance, (n_components, 1, 1)),
        "tied": np.eye(n_features) / variance,
        "diag": np.full((n_components, n_features), 1.0 / variance),
        "spherical": np.full(n_components, 1.0 / variance),
    }[covariance_type]
    return _read_only(weights, means, precisions)


# ----------------------------------------------------------------------------- KMeans
def make_kmeans_fit(impl, X, centers):
    """``fit(max_iter) -> n_iter`` for one KMeans implementation from ``centers``."""
    k = len(centers)
    if impl == "gmm_fast":
        from gmm_fast import KMeans

        def fit(max_iter):
            return KMeans(k, init=centers, n_init=1, tol=0, max_iter=max_iter,
                          n_threads=N_THREADS).fit(X).n_iter_
        return fit
    if impl in ("sklearn", "sklearnex"):
        # scikit-learn-intelex's KMeans takes scikit-learn's API: one fit serves both.
        if impl == "sklearn":
            from sklearn.cluster import KMeans
        else:
            try:
                from sklearnex.cluster import KMeans
            except ImportError as exc:
                raise Unavailable(f"scikit-learn-intelex not installed ({exc})") from None

        def fit(max_iter):
            return KMeans(k, init=centers, n_init=1, tol=0, max_iter=max_iter,
                          algorithm="lloyd").fit(X).n_iter_
        return limited(fit)
    if impl == "sklearn-loop":
        try:  # private, but stable since scikit-learn 0.23: what KMeans.fit runs per init
            from sklearn.cluster._kmeans import _kmeans_single_lloyd
        except ImportError as exc:
            raise Unavailable(f"scikit-learn's _kmeans_single_lloyd not found ({exc})") from None
        unit_weights = np.ones(X.shape[0], dtype=X.dtype)

        def fit(max_iter):
            # A copy: the loop updates its centres in place (KMeans.fit passes a copy too).
            return _kmeans_single_lloyd(X, unit_weights, centers.copy(), max_iter=max_iter,
                                        tol=0, n_threads=N_THREADS)[3]
        return limited(fit)
    if impl == "onedal":
        try:  # scikit-learn-intelex's backend estimator, without its scikit-learn wrapper
            from onedal.cluster import KMeans
        except ImportError as exc:
            raise Unavailable(f"scikit-learn-intelex's onedal not installed ({exc})") from None

        def fit(max_iter):
            return KMeans(k, init=centers, n_init=1, tol=0, max_iter=max_iter).fit(X).n_iter_
        return limited(fit)
    if impl == "faiss":
        try:
            import faiss
        except ImportError as exc:
            raise Unavailable(f"faiss not installed ({exc})") from None
        if X.dtype != np.float32:
            raise Unavailable("faiss.Kmeans is float32 only")
        faiss.omp_set_num_threads(N_THREADS)

        def fit(max_iter):
            # No subsampling: max_points_per_centroid above n_samples / k.
            km = faiss.Kmeans(X.shape[1], k, niter=max_iter, nredo=1, seed=0,
                              max_points_per_centroid=len(X) + 1, verbose=False)
            km.train(X, init_centroids=centers)
            return len(km.obj)   # one objective value per iteration
        return fit
    raise ValueError(f"unknown KMeans implementation {impl!r}")


# ----------------------------------------------------------------------------- GMM
def gmm_fast_missing():
    """Why gmm_fast.GaussianMixture cannot be benchmarked, or None when it can."""
    try:
        from gmm_fast import GaussianMixture  # noqa: F401
    except ImportError as exc:
        return f"gmm_fast.GaussianMixture is not available yet ({exc})"
    return None


def make_gmm_fit(impl, X, covariance_type, weights, means, precisions):
    """``fit(max_iter) -> n_iter`` for one GaussianMixture implementation."""
    k = len(weights)
    common = dict(n_components=k, covariance_type=covariance_type, tol=0.0,
                  init_params="random_from_data", random_state=0, weights_init=weights,
                  means_init=means, precisions_init=precisions)
    if impl == "gmm_fast":
        reason = gmm_fast_missing()
        if reason:
            raise Unavailable(reason)
        from gmm_fast import GaussianMixture

        def fit(max_iter):
            return GaussianMixture(max_iter=max_iter, n_threads=N_THREADS,
                                   **common).fit(X).n_iter_
        return fit
    if impl == "sklearn":
        from sklearn.mixture import GaussianMixture

        def fit(max_iter):
            return GaussianMixture(max_iter=max_iter, **common).fit(X).n_iter_
        return limited(fit)
    if impl == "daal4py":
        try:
            import daal4py
        except ImportError as exc:
            raise Unavailable(f"daal4py (scikit-learn-intelex) not installed ({exc})") from None
        if covariance_type not in GMM_PEER_COVARIANCES:
            raise Unavailable(f"daal4py em_gmm has no {covariance_type!r} covariance")
        daal4py.daalinit(N_THREADS)
        fptype = "float" if X.dtype == np.float32 else "double"
        weights_in = weights.reshape(1, -1).astype(X.dtype)
        means_in = means.astype(X.dtype)
        if covariance_type == "full":
            storage = "full"
            covariances = [np.ascontiguousarray(np.linalg.inv(p), dtype=X.dtype)
                           for p in precisions]
        else:
            storage = "diagonal"
            covariances = [(1.0 / p).reshape(1, -1).astype(X.dtype) for p in precisions]

        def fit(max_iter):
            algorithm = daal4py.em_gmm(nComponents=k, maxIterations=max_iter,
                                       accuracyThreshold=0.0, covarianceStorage=storage,
                                       fptype=fptype)
            result = algorithm.compute(X, weights_in, means_in, covariances)
            return int(np.asarray(result.nIterations).ravel()[0])
        return fit
    raise ValueError(f"unknown GaussianMixture implementation {impl!r}")


def gemm_flops(covariance_type, n_samples, n_features, n_components):
    """Nominal flops of one EM iteration's products, counted as GEMMs would count them.

    full ``4 n k d^2``: E-step ``(X - mu_k) L_k`` for every component and the M-step
    scatter ``sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T`` (``2 n d^2`` each, per component).
    tied ``4 n d^2 + 4 n k d``: ``(X - s) P`` and the one scatter, then the
    ``n x k x d`` products of the log-densities and of ``sum_i r_ik x_i``.
    diag ``8 n k d``: those two products for ``x`` and for ``x^2``.
    spherical ``4 n k d``: the two for ``x`` alone.
    Lower-order terms (exp, logs, O(n k) and O(n d) passes) are left out, and a
    kernel that uses a triangle does fewer real flops: this is the count to compare
    with the GEMM peak, and the time it takes at that peak is a floor.
    """
    n, d, k = n_samples, n_features, n_components
    return {"full": 4.0 * n * k * d * d, "tied": 4.0 * n * d * (d + k),
            "diag": 8.0 * n * k * d, "spherical": 4.0 * n * k * d}[covariance_type]

