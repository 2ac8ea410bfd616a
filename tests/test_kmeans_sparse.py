"""gmm_fast.KMeans on scipy.sparse input: parity with scikit-learn and with the dense path,
thread invariance, formats, dtypes, weights, k-means++ and the edges of sparse data."""
import numpy as np
import pytest
from kmeans_reference import assert_same_fit, lloyd_step_reference

from gmm_fast import GaussianMixture, KMeans, kmeans_plusplus
from gmm_fast._lloyd_sparse import sparse_center_sums, sparse_lloyd_step
from gmm_fast._sparse import check_sparse

sp = pytest.importorskip("scipy.sparse")
sklearn_cluster = pytest.importorskip("sklearn.cluster")


def sparse_blobs(rng, n_samples=1500, n_features=60, n_centers=5, dtype=np.float64,
                 density=0.3):
    """Groups around sparse centres (each on its own ~density share of the features), plus a
    few stray non-zeros per row: well separated, so labels have no near ties."""
    centers = np.zeros((n_centers, n_features))
    for j in range(n_centers):
        support = rng.choice(n_features, int(density * n_features), replace=False)
        centers[j, support] = rng.uniform(2, 6, len(support))
    labels = rng.integers(n_centers, size=n_samples)
    X = centers[labels] * (1 + 0.2 * rng.standard_normal((n_samples, n_features)))
    stray = rng.random((n_samples, n_features)) < 0.02
    X[stray] += rng.uniform(0, 1, stray.sum())
    return sp.csr_matrix(X.astype(dtype))


@pytest.fixture
def X(rng):
    return sparse_blobs(rng)


def fit_pair(X, init, sample_weight=None, **params):
    """The same fit on sparse X and on its dense copy (and the first's estimator)."""
    ours = KMeans(len(init), init=init, n_init=1, **params).fit(X, sample_weight=sample_weight)
    dense = KMeans(len(init), init=init, n_init=1, **params).fit(
        X.toarray(), sample_weight=sample_weight)
    return ours, dense




# rtol 1e-10 in float64 (the target): the same arithmetic from the same centres,
# the sums in another order. float32: scikit-learn sums the centres in float32, gmm_fast
# in float64, so their centres differ by float32's rounding.
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_clusters", [3, 8])
def test_parity_with_sklearn_same_init(rng, dtype, weighted, n_clusters):
    X = sparse_blobs(rng, dtype=dtype)
    sample_weight = rng.uniform(0.1, 3.0, X.shape[0]) if weighted else None
    init = X[rng.choice(X.shape[0], n_clusters, replace=False)].toarray()
    ours = KMeans(n_clusters, init=init, n_init=1).fit(X, sample_weight=sample_weight)
    theirs = sklearn_cluster.KMeans(n_clusters, init=init, n_init=1, algorithm="lloyd").fit(
        X, sample_weight=sample_weight)
    assert ours.n_iter_ > 1
    assert ours.cluster_centers_.dtype == dtype
    assert_same_fit(ours, theirs, 1e-10 if dtype == np.float64 else 2e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_same_as_dense_path(rng, dtype, weighted):
    X = sparse_blobs(rng, dtype=dtype)
    sample_weight = rng.uniform(0.1, 3.0, X.shape[0]) if weighted else None
    init = X[:6].toarray()
    ours, dense = fit_pair(X, init, sample_weight)
    assert_same_fit(ours, dense, 1e-10 if dtype == np.float64 else 1e-5)
    Y = sparse_blobs(np.random.default_rng(1), 300, dtype=dtype)
    np.testing.assert_array_equal(ours.predict(Y), dense.predict(Y.toarray()))
    np.testing.assert_allclose(ours.score(Y), dense.score(Y.toarray()),
                               rtol=1e-10 if dtype == np.float64 else 1e-5)
    np.testing.assert_allclose(ours.transform(Y), dense.transform(Y.toarray()),
                               rtol=1e-10 if dtype == np.float64 else 1e-5)
    assert ours.transform(Y).dtype == dtype


def test_methods_on_sparse_input(X, rng):
    """predict, transform, score, fit_predict, fit_transform take sparse X as the dense."""
    km = KMeans(5, random_state=0).fit(X)
    dense = X.toarray()
    np.testing.assert_array_equal(km.predict(X), km.predict(dense))
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    np.testing.assert_allclose(km.transform(X), km.transform(dense), rtol=1e-12)
    sample_weight = rng.uniform(0.5, 2, X.shape[0])
    np.testing.assert_allclose(km.score(X, sample_weight=sample_weight),
                               km.score(dense, sample_weight=sample_weight), rtol=1e-12)
    np.testing.assert_allclose(-km.score(X), km.inertia_, rtol=1e-12)
    np.testing.assert_array_equal(KMeans(5, random_state=0).fit_predict(X), km.labels_)
    np.testing.assert_allclose(KMeans(5, random_state=0).fit_transform(X), km.transform(X))
    # a model fitted on dense data takes sparse data, and the reverse
    np.testing.assert_array_equal(KMeans(5, random_state=0).fit(dense).predict(X), km.labels_)
    with pytest.raises(ValueError, match="X has 3 features, but KMeans is expecting 60"):
        km.predict(X[:, :3])


def test_transform_matches_sklearn(X):
    init = X[:4].toarray()
    ours = KMeans(4, init=init, n_init=1).fit(X)
    theirs = sklearn_cluster.KMeans(4, init=init, n_init=1).fit(X)
    # (scikit-learn's expansion leaves ~1e-8 where a row is a centre; ours is exact there)
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X), rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(ours.score(X), theirs.score(X), rtol=1e-10)


def test_threads_give_bitwise_the_same_fit(X, rng, parallel_passes):
    sample_weight = rng.uniform(0.1, 3.0, X.shape[0])
    fits = [KMeans(8, random_state=1, n_threads=n).fit(X, sample_weight=sample_weight)
            for n in (1, 2)]
    np.testing.assert_array_equal(fits[0].labels_, fits[1].labels_)
    assert fits[0].cluster_centers_.tobytes() == fits[1].cluster_centers_.tobytes()
    assert fits[0].inertia_ == fits[1].inertia_
    assert fits[0].n_iter_ == fits[1].n_iter_
    transforms = [fit.transform(X) for fit in fits]
    assert transforms[0].tobytes() == transforms[1].tobytes()


@pytest.mark.parametrize("n_samples", [255, 257, 1000, 17000])
def test_kernel_threads_and_blocks(rng, dtype, n_samples):
    """One sparse Lloyd step against the numpy oracle; 1 and 2 threads bitwise equal, at
    block edges too (256 rows per block at least)."""
    X = sparse_blobs(rng, n_samples, 30, 4, dtype=dtype)
    rows = check_sparse(X)
    data_t, row_ids, colptr = rows.transposed()
    sample_weight = rng.uniform(0.5, 2, n_samples).astype(dtype)
    centers = X[:5].toarray()
    results = []
    for n_threads in (1, 2):
        labels = np.full(n_samples, -1, dtype=np.int32)
        blocks = 7
        counts, inertia = np.empty((blocks, 5)), np.empty(blocks)
        sums_t = np.empty((30, 5))
        sparse_lloyd_step(rows.data, rows.indices, rows.indptr, sample_weight,
                          np.ascontiguousarray(centers.T), labels, counts, inertia, True,
                          n_threads)
        sparse_center_sums(data_t, row_ids, colptr, sample_weight, labels, sums_t, n_threads)
        results.append((labels, counts.sum(axis=0), inertia.sum(), sums_t))
    for a, b in zip(*results):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    labels, counts, inertia, sums_t = results[0]
    ref = lloyd_step_reference(X.toarray().astype(np.float64), sample_weight.astype(np.float64),
                               centers.astype(np.float64))
    np.testing.assert_array_equal(labels, ref[0])
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(sums_t.T, ref[1], rtol=rtol, atol=rtol * np.abs(ref[1]).max())
    np.testing.assert_allclose(counts, ref[2], rtol=rtol)
    np.testing.assert_allclose(inertia, ref[3], rtol=rtol)


@pytest.mark.parametrize("fmt", ["csc", "coo", "lil", "dok", "bsr"])
def test_other_formats_converted(X, fmt):
    init = X[:5].toarray()
    reference = KMeans(5, init=init, n_init=1).fit(X)
    other = KMeans(5, init=init, n_init=1).fit(X.asformat(fmt))
    np.testing.assert_array_equal(other.labels_, reference.labels_)
    assert other.cluster_centers_.tobytes() == reference.cluster_centers_.tobytes()
    np.testing.assert_array_equal(other.predict(X.asformat(fmt)), reference.labels_)


def test_sparse_arrays_index_types_and_inputs_kept(X):
    init = X[:5].toarray()
    reference = KMeans(5, init=init, n_init=1).fit(X)
    array = sp.csr_array(X)
    wide = sp.csr_matrix((X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64)),
                         shape=X.shape)
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    for variant in (array, wide):
        fit = KMeans(5, init=init, n_init=1).fit(variant)
        assert fit.cluster_centers_.tobytes() == reference.cluster_centers_.tobytes()
        np.testing.assert_array_equal(fit.labels_, reference.labels_)
    for kept, now in zip(before, (X.data, X.indices, X.indptr)):
        np.testing.assert_array_equal(kept, now)


def test_dtypes(X):
    assert KMeans(3, random_state=0).fit(X.astype(np.float32)).cluster_centers_.dtype == np.float32
    assert KMeans(3, random_state=0).fit(X.astype(np.int64)).cluster_centers_.dtype == np.float64
    km = KMeans(3, random_state=0).fit(X.astype(np.float32))
    assert km.transform(X).dtype == np.float32  # the model's dtype, as for dense input


def test_duplicate_entries_are_summed(X):
    """A CSR matrix with repeated (row, column) entries means their sum, as toarray()."""
    coo = X.tocoo()
    half = coo.data / 2
    doubled = sp.coo_matrix((np.concatenate([half, coo.data - half]),
                             (np.tile(coo.row, 2), np.tile(coo.col, 2))), shape=X.shape)
    csr = sp.csr_matrix(doubled)
    csr.has_canonical_format = False
    init = X[:5].toarray()
    np.testing.assert_allclose(KMeans(5, init=init, n_init=1).fit(csr).inertia_,
                               KMeans(5, init=init, n_init=1).fit(X).inertia_, rtol=1e-12)


def test_empty_rows_and_zero_columns(rng, dtype):
    """All-zero rows (no stored value) and all-zero columns, including an empty last row."""
    X = sparse_blobs(rng, 400, 20, 3, dtype=dtype).tolil()
    X[:, 7] = 0
    X[:, 19] = 0
    for row in (0, 5, 6, 399):
        X[row, :] = 0
    X = sp.csr_matrix(X)
    X.eliminate_zeros()
    assert np.diff(X.indptr)[[0, 5, 6, 399]].sum() == 0
    init = X[[1, 2, 3, 4]].toarray()
    ours, dense = fit_pair(X, init)
    theirs = sklearn_cluster.KMeans(4, init=init, n_init=1).fit(X)
    rtol = 1e-10 if dtype == np.float64 else 2e-5
    assert_same_fit(ours, dense, rtol)
    assert_same_fit(ours, theirs, rtol)
    assert (ours.cluster_centers_[:, [7, 19]] == 0).all()


def test_empty_cluster_relocated_like_sklearn_and_dense(rng):
    """A centre far from every row gets none in the first step and is relocated."""
    X = sparse_blobs(rng, 500, 20, 2)
    init = X[:3].toarray()
    init[2] = 100.0
    ours, dense = fit_pair(X, init)
    theirs = sklearn_cluster.KMeans(3, init=init, n_init=1).fit(X)
    assert np.bincount(ours.labels_, minlength=3).min() > 0
    assert_same_fit(ours, dense, 1e-10)
    assert_same_fit(ours, theirs, 1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plusplus_same_as_dense(rng, dtype, weighted):
    X = sparse_blobs(rng, 2000, 40, 6, dtype=dtype)
    sample_weight = rng.uniform(0.1, 3.0, X.shape[0]) if weighted else None
    ours = kmeans_plusplus(X, 7, sample_weight=sample_weight, random_state=3)
    dense = kmeans_plusplus(X.toarray(), 7, sample_weight=sample_weight, random_state=3)
    np.testing.assert_array_equal(ours[1], dense[1])
    np.testing.assert_array_equal(ours[0], dense[0])
    assert ours[0].dtype == dtype and not hasattr(ours[0], "toarray")
    # (not scikit-learn's rows: gmm_fast's draws treat integer weights as repeated rows,
    # _draws, so the same seed draws other rows than scikit-learn's)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_seeded_fits_same_as_dense(X, rng, init):
    """Seeded on sparse X, the same fit as on the dense array (the draws hash sparse and
    dense rows alike, _draws.row_hashes)."""
    sample_weight = rng.uniform(0.5, 2.0, X.shape[0])
    ours = KMeans(5, init=init, n_init=2, random_state=7).fit(X, sample_weight=sample_weight)
    dense = KMeans(5, init=init, n_init=2, random_state=7).fit(X.toarray(),
                                                               sample_weight=sample_weight)
    assert_same_fit(ours, dense, 1e-10)


def test_callable_init_gets_the_sparse_matrix(X):
    seen = []

    def init(data, n_clusters, random_state):
        seen.append(data)
        return data[:n_clusters].toarray()

    KMeans(3, init=init, n_init=1).fit(X)
    assert sp.issparse(seen[0])


def test_non_finite_values_named(X):
    bad = X.copy()
    bad.data[bad.indptr[7]] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN \(first at row 7, 1 row"):
        KMeans(3).fit(bad)
    bad.data[bad.indptr[7]] = np.inf
    with pytest.raises(ValueError, match=r"X contains infinity \(first at row 7"):
        KMeans(3).fit(bad)


def test_gaussian_mixture_stays_dense_only(X):
    with pytest.raises(TypeError, match=r"X is a sparse matrix.*GaussianMixture.*toarray"):
        GaussianMixture(2).fit(X)
    gm = GaussianMixture(2, random_state=0).fit(X.toarray())
    with pytest.raises(TypeError, match=r"sparse.*toarray"):
        gm.predict(X)


def test_tfidf_like_data(rng, parallel_passes):
    """Rows L2-normalised with a few hundred non-zeros of 5000 features (the bench's shape,
    smaller): fits, and 1 and 2 threads agree bitwise."""
    X = sp.random(3000, 5000, density=0.01, format="csr", random_state=np.random.RandomState(0))
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = sp.csr_matrix(sp.diags(1 / np.where(norms > 0, norms, 1)) @ X)
    fits = [KMeans(16, random_state=0, n_threads=n, max_iter=20).fit(X) for n in (1, 2)]
    assert fits[0].cluster_centers_.tobytes() == fits[1].cluster_centers_.tobytes()
    # the inertia as the dense path computes it from the same centres
    np.testing.assert_allclose(fits[0].inertia_, -fits[0].score(X.toarray()), rtol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_column_mean_and_variance_in_steps(X, rng, monkeypatch, weighted):
    """The tolerance's variances (weighted or not), in steps of a few rows as in one."""
    from gmm_fast import _sparse
    sample_weight = rng.uniform(0.1, 3.0, X.shape[0]) if weighted else None
    whole = _sparse.mean_and_variance(check_sparse(X), sample_weight)
    monkeypatch.setattr(_sparse, "_STEP_ELEMENTS", 50)
    assert len(_sparse._nnz_steps(check_sparse(X))) > 100
    stepped = _sparse.mean_and_variance(check_sparse(X), sample_weight)
    dense = X.toarray()
    w = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    mean = w @ dense / w.sum()
    variance = w @ (dense - mean) ** 2 / w.sum()
    for got in (whole, stepped):
        np.testing.assert_allclose(got[0], mean, rtol=1e-12)
        np.testing.assert_allclose(got[1], variance, rtol=1e-12)
