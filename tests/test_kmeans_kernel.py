"""The Lloyd kernel against the numpy reference, at chunk and block edges, any thread count."""
import numpy as np
import pytest
from conftest import make_blobs
from kmeans_reference import lloyd_step_reference, sq_distances

from gmm_fast import KMeans
from gmm_fast._lloyd import candidate_potentials, chunk_rows, lloyd_step, min_sq_distances
from gmm_fast._threads import MAX_BLOCKS, MIN_ROWS_PER_BLOCK, n_blocks

# Each test at every CPU level of the kernels this machine supports (conftest).
pytestmark = pytest.mark.usefixtures("cpu_level")

EPS = {np.float32: np.finfo(np.float32).eps, np.float64: np.finfo(np.float64).eps}


def run_lloyd_step(X, sample_weight, shift, centers, n_threads, blocks=None,
                   update_centers=True):
    """One kernel step; returns labels, summed sums/counts/inertia and the raw block buffers."""
    n_clusters, n_features = centers.shape
    if blocks is None:
        blocks = n_blocks(len(X), n_clusters * (n_features + 1))
    labels = np.full(len(X), -1, dtype=np.int32)
    block_sums = np.full((blocks, n_clusters, n_features), np.nan)
    block_counts = np.full((blocks, n_clusters), np.nan)
    block_inertia = np.full(blocks, np.nan)
    lloyd_step(X, sample_weight, shift, centers, labels, block_sums, block_counts,
               block_inertia, update_centers, n_threads)
    return (labels, block_sums.sum(axis=0), block_counts.sum(axis=0), block_inertia.sum(),
            (block_sums, block_counts, block_inertia))


def make_step_input(rng, n_samples, n_features, n_clusters, dtype, offset=3.0):
    """Blobs away from the origin, positive weights, centres drawn from X, all about the mean."""
    X = make_blobs(rng, n_samples, n_features, max(n_clusters, 2), offset=offset).astype(dtype)
    sample_weight = rng.uniform(0.2, 3.0, n_samples).astype(dtype)
    shift = X.astype(np.float64).mean(axis=0).astype(dtype)
    centers = (X[rng.choice(n_samples, n_clusters, replace=False)] - shift).astype(dtype)
    return X, sample_weight, shift, np.ascontiguousarray(centers)


def assert_step_matches_reference(X, sample_weight, shift, centers, result):
    """Compare one kernel step with the reference, with tolerances from the rounding analysis.

    The kernel works on ``xs = fl(X - shift)`` in the dtype of X and sums in float64.
    - float64: xs is exactly what the reference computes, so sums, counts and
      inertia differ only by summation order: at most ``n * eps64`` times the sum of
      the absolute terms (the worst-case bound of recursive summation), and for the
      inertia ``(n + d) * eps64`` (each row's distance is a sum of d terms).
    - float32: rounding xs to float32 moves each term by at most ``eps32/2 |x - shift|``
      (sums) and ``eps32 |x - shift| |x - c|`` (inertia); the float64 sums add
      nothing visible. Bounds below are twice these.
    Labels: the kernel may choose differently from the exact float64 argmin only on
    a near-tie, within the rounding of the distances it computes (GEMM form
    ``|c|^2 - 2 xs.c`` for wide data): ``4 d eps (|xs| + |c|)^2``.
    """
    labels, sums, counts, inertia, _ = result
    dtype = X.dtype.type
    eps, n_samples, n_features = EPS[dtype], X.shape[0], X.shape[1]
    xs = X.astype(np.float64) - shift.astype(np.float64)
    w = sample_weight.astype(np.float64)
    c64 = centers.astype(np.float64)

    distances = sq_distances(xs, c64)
    chosen = distances[np.arange(n_samples), labels]
    scale = (np.linalg.norm(xs, axis=1) + np.linalg.norm(c64, axis=1).max()) ** 2
    assert labels.min() >= 0 and labels.max() < len(centers)
    assert np.all(chosen <= distances.min(axis=1) + 4 * n_features * eps * scale)
    ref_labels = lloyd_step_reference(xs, w, c64)[0]
    if dtype is np.float64:
        # Random continuous data: a tie within 1e-15 relative has probability ~0.
        np.testing.assert_array_equal(labels, ref_labels)
    else:
        assert np.mean(labels != ref_labels) < 0.01

    # The statistics, given the kernel's own labels.
    _, ref_sums, ref_counts, ref_inertia, _ = lloyd_step_reference(xs, w, c64, labels=labels)
    summation = n_samples * np.finfo(np.float64).eps
    rounding = eps if dtype is np.float32 else 0.0
    abs_sums = np.zeros_like(ref_sums)
    np.add.at(abs_sums, labels, w[:, None] * np.abs(xs))
    assert np.all(np.abs(sums - ref_sums) <= (summation + rounding) * abs_sums + 1e-300)
    np.testing.assert_allclose(counts, ref_counts, rtol=summation, atol=0)
    # Each row's squared distance is itself a sum of d terms (in the kernel's own order).
    row_summation = n_features * np.finfo(np.float64).eps
    inertia_bound = ((summation + row_summation) * (w @ chosen)
                     + 2 * rounding * (w @ (np.linalg.norm(xs, axis=1) * np.sqrt(chosen))))
    assert abs(inertia - ref_inertia) <= inertia_bound + 1e-300


# d=100: k=1 and 5 take the wide-row direct path (AVX-512: k <= d/8 in float32, d/2 in
# float64; AVX2: k <= d/20, d/10)
@pytest.mark.parametrize("n_features", [2, 20, 100], ids=["direct_d2", "gemm_d20", "d100"])
@pytest.mark.parametrize("n_clusters", [1, 5, 40])
def test_lloyd_step_matches_reference(rng, dtype, n_features, n_clusters):
    X, w, shift, centers = make_step_input(rng, 1500, n_features, n_clusters, dtype)
    result = run_lloyd_step(X, w, shift, centers, n_threads=2)
    assert_step_matches_reference(X, w, shift, centers, result)


@pytest.mark.parametrize("n_features", [20, 100], ids=["gemm", "wide_direct"])
def test_lloyd_step_far_from_origin(rng, n_features):
    """Data at 1e6 from the origin: working about ``shift`` avoids the GEMM cancellation."""
    X, w, shift, centers = make_step_input(rng, 800, n_features, 6, np.float64, offset=1e6)
    result = run_lloyd_step(X, w, shift, centers, n_threads=2)
    assert_step_matches_reference(X, w, shift, centers, result)


@pytest.mark.parametrize("chunks, extra", [(0, 1), (1, -1), (1, 0), (1, 1), (2, 1)],
                         ids=["1", "chunk-1", "chunk", "chunk+1", "2chunk+1"])
@pytest.mark.parametrize("one_block", [False, True], ids=["default_blocks", "one_block"])
@pytest.mark.parametrize("n_features", [3, 17])
def test_lloyd_step_chunk_edges(rng, dtype, chunks, extra, one_block, n_features):
    """Rows at the end of a chunk, inside one block (chunks loop) and over default blocks."""
    n_samples = chunks * chunk_rows(n_features, 4, np.dtype(dtype).itemsize) + extra
    X, w, shift, centers = make_step_input(rng, max(n_samples, 4), n_features, 4, dtype)
    X, w = X[:n_samples], w[:n_samples]
    result = run_lloyd_step(X, w, shift, centers, n_threads=2, blocks=1 if one_block else None)
    assert_step_matches_reference(X, w, shift, centers, result)


@pytest.mark.parametrize("n_samples", [1, 3, 4, 5, 9, 259])
@pytest.mark.parametrize("one_block", [False, True], ids=["default_blocks", "one_block"])
@pytest.mark.parametrize("n_features", [100, 103])
def test_wide_direct_path_row_groups(rng, dtype, n_samples, one_block, n_features):
    """The wide-row path takes rows 3 (AVX2) or 4 (AVX-512) at a time: partial last groups,
    in one or many blocks (k=5: that path at both levels, in both dtypes); its first
    block shifts whole vectors of a full group's features (d=103: a tail left over
    in both dtypes)."""
    X, w, shift, centers = make_step_input(rng, max(n_samples, 8), n_features, 5, dtype)
    X, w = X[:n_samples], w[:n_samples]
    result = run_lloyd_step(X, w, shift, centers, n_threads=2, blocks=1 if one_block else None)
    assert_step_matches_reference(X, w, shift, centers, result)


@pytest.mark.parametrize("n_samples", [1, 7, 8, 11, 12, 13, 16, 23, 24, 25, 33, 259])
@pytest.mark.parametrize("one_block", [False, True], ids=["default_blocks", "one_block"])
@pytest.mark.parametrize("n_features", [3, 16, 32])
def test_narrow_direct_path_row_groups(rng, dtype, n_samples, one_block, n_features):
    """The narrow path takes rows in groups of 96 bytes (AVX2 built by GCC: 12 float64, 24
    float32) or 128 (AVX-512, and Clang builds: 16, 32): partial last groups and groups
    across block edges, with k=5 (a partial block of the 4 centres taken at a time).
    d=32: float64 at AVX2 in GCC builds only (elsewhere the GEMM path)."""
    X, w, shift, centers = make_step_input(rng, max(n_samples, 8), n_features, 5, dtype)
    X, w = X[:n_samples], w[:n_samples]
    result = run_lloyd_step(X, w, shift, centers, n_threads=2, blocks=1 if one_block else None)
    assert_step_matches_reference(X, w, shift, centers, result)


@pytest.mark.parametrize("n_samples", [MIN_ROWS_PER_BLOCK - 1, MIN_ROWS_PER_BLOCK,
                                       MIN_ROWS_PER_BLOCK + 1, 3 * MIN_ROWS_PER_BLOCK + 1,
                                       MAX_BLOCKS * MIN_ROWS_PER_BLOCK - 1,
                                       MAX_BLOCKS * MIN_ROWS_PER_BLOCK + 1])
def test_lloyd_step_block_boundaries(rng, dtype, n_samples):
    """Where the number of blocks changes (n_blocks steps every MIN_ROWS_PER_BLOCK rows)."""
    X, w, shift, centers = make_step_input(rng, n_samples, 5, 7, dtype)
    result = run_lloyd_step(X, w, shift, centers, n_threads=2)
    assert_step_matches_reference(X, w, shift, centers, result)


@pytest.mark.parametrize("blocks", [1, 2, 3, 7, 10, 13])
def test_lloyd_step_any_block_count_and_empty_blocks(rng, blocks):
    """Any first-axis length works; blocks past the last row are zeroed, not left as garbage."""
    n_samples = 10  # 13 blocks of 1 row leave 3 empty; 7 blocks of 2 rows leave 2 empty
    X, w, shift, centers = make_step_input(rng, n_samples, 3, 3, np.float64)
    result = run_lloyd_step(X, w, shift, centers, n_threads=2, blocks=blocks)
    assert_step_matches_reference(X, w, shift, centers, result)
    block_sums, block_counts, block_inertia = result[4]
    rows_per_block = -(-n_samples // blocks)
    for b in range(blocks):
        if b * rows_per_block >= n_samples:
            assert block_inertia[b] == 0 and not block_counts[b].any() and not block_sums[b].any()
        else:
            rows = slice(b * rows_per_block, min((b + 1) * rows_per_block, n_samples))
            np.testing.assert_allclose(block_counts[b].sum(), w[rows].sum(), rtol=1e-15)


def test_lloyd_step_labels_only(rng, dtype):
    """update_centers=False gives the same labels and inertia; zero-size buffers are accepted."""
    X, w, shift, centers = make_step_input(rng, 700, 4, 5, dtype)
    full = run_lloyd_step(X, w, shift, centers, n_threads=2)
    blocks = n_blocks(len(X), 1)
    labels = np.empty(len(X), dtype=np.int32)
    block_inertia = np.empty(blocks)
    lloyd_step(X, w, shift, centers, labels, np.empty((blocks, 0, 0)), np.empty((blocks, 0)),
               block_inertia, False, 2)
    np.testing.assert_array_equal(labels, full[0])
    np.testing.assert_allclose(block_inertia.sum(), full[3], rtol=1e-12)


@pytest.mark.parametrize("n_features", [2, 20, 100], ids=["narrow", "gemm", "wide_direct"])
def test_lloyd_step_without_inertia(rng, dtype, n_features):
    """with_inertia=False (Lloyd's iterations): the same labels and sums, inertia left at 0."""
    X, w, shift, centers = make_step_input(rng, 2000, n_features, 5, dtype)
    full = run_lloyd_step(X, w, shift, centers, n_threads=2)
    blocks = full[4][0].shape[0]
    labels = np.full(len(X), -1, dtype=np.int32)
    block_sums, block_counts = np.full_like(full[4][0], np.nan), np.full_like(full[4][1], np.nan)
    block_inertia = np.full(blocks, np.nan)
    changed = lloyd_step(X, w, shift, centers, labels, block_sums, block_counts, block_inertia,
                         True, 2, with_inertia=False)
    assert changed == len(X)  # every label was -1
    np.testing.assert_array_equal(labels, full[0])
    np.testing.assert_array_equal(block_sums, full[4][0])
    np.testing.assert_array_equal(block_counts, full[4][1])
    assert not block_inertia.any() and full[3] > 0


@pytest.mark.parametrize("n_features", [2, 20, 100])
def test_lloyd_step_threads_bitwise(rng, dtype, n_features):
    X, w, shift, centers = make_step_input(rng, 20000, n_features, 9, dtype)
    one = run_lloyd_step(X, w, shift, centers, n_threads=1)
    two = run_lloyd_step(X, w, shift, centers, n_threads=2)
    assert one[4][0].shape[0] > 1  # several blocks, or the test proves nothing
    np.testing.assert_array_equal(one[0], two[0])
    for a, b in zip(one[4], two[4]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n_features", [2, 20, 100])
def test_fit_threads_bitwise(rng, dtype, n_features, parallel_passes):
    """A whole fit (k-means++ seeding, n_init=2, relocations) does not depend on n_threads."""
    X = make_blobs(rng, 20000, n_features, 6).astype(dtype)
    w = rng.uniform(0.5, 2, len(X))
    fits = [KMeans(8, n_init=2, random_state=3, n_threads=t).fit(X, sample_weight=w)
            for t in (1, 2)]
    np.testing.assert_array_equal(fits[0].cluster_centers_, fits[1].cluster_centers_)
    np.testing.assert_array_equal(fits[0].labels_, fits[1].labels_)
    assert fits[0].inertia_ == fits[1].inertia_
    assert fits[0].n_iter_ == fits[1].n_iter_


# Rows in steps of 1024 (1023-1025: one step and a one-row second), d=100: the
# vectorised sum's full vectors and remainder.
@pytest.mark.parametrize("n_samples, n_features",
                         [(600, 5), (1023, 100), (1024, 3), (1025, 100), (3000, 17)])
def test_min_sq_distances_matches_numpy(rng, dtype, n_threads, n_samples, n_features):
    X = make_blobs(rng, n_samples, n_features, 3).astype(dtype)
    center = X[17].copy()
    closest = rng.uniform(0, 60, len(X))
    expected = np.minimum(closest, sq_distances(X, center[None])[:, 0])
    min_sq_distances(X, center, closest, n_threads)
    # Differences of float32 values are exact in float64: only the sum rounds.
    np.testing.assert_allclose(closest, expected, rtol=1e-13)


# Rows 2, 4 or 8 at a time in vector lanes (the level's width, seed_rows.h; 901 rows end
# in a partial group), features 32 at a time (d=40: a second, partial block), candidates
# 8 at a time, one code copy per count (3; 9: a full pass, then one). weighted=False
# passes None.
@pytest.mark.parametrize("n_features", [4, 40])
@pytest.mark.parametrize("n_candidates", [3, 9])
@pytest.mark.parametrize("weighted", [True, False])
def test_candidate_potentials_matches_numpy(rng, dtype, n_threads, n_features, n_candidates,
                                            weighted):
    X = make_blobs(rng, 901, n_features, 3).astype(dtype)
    w = rng.uniform(0, 2, len(X)).astype(dtype) if weighted else None
    candidates = np.ascontiguousarray(X[[3, 50, 400, 7, 8, 900, 11, 12, 13][:n_candidates]])
    closest = sq_distances(X, X[[0]])[:, 0]
    block_potentials = np.full((n_blocks(len(X), n_candidates), n_candidates), np.nan)
    weight = np.ones(len(X)) if w is None else w.astype(np.float64)
    distances = sq_distances(X, candidates)
    expected = weight @ np.minimum(distances, closest[:, None])
    from gmm_fast._lloyd import use_direct_path

    # The vector form, then the row loop (which CPUs without AVX-512 take); each also
    # with the candidates' distances kept.
    for direct in (True, False):
        previous = use_direct_path(direct)
        try:
            candidate_potentials(X, w, candidates, closest, block_potentials, n_threads)
            np.testing.assert_allclose(block_potentials.sum(axis=0), expected, rtol=1e-12)
            kept = np.full((n_candidates, len(X)), np.nan)
            candidate_potentials(X, w, candidates, closest, block_potentials, n_threads, kept)
        finally:
            use_direct_path(previous)
        np.testing.assert_allclose(block_potentials.sum(axis=0), expected, rtol=1e-12)
        np.testing.assert_allclose(kept, distances.T, rtol=1e-12,
                                   atol=1e-12 * distances.max())


@pytest.mark.parametrize("n_features", [2, 37])
def test_candidate_potentials_threads_bitwise(rng, dtype, n_features):
    """Blocks depend on the rows only: 1 and 2 threads sum the same potentials, bitwise."""
    X = make_blobs(rng, 5000, n_features, 3).astype(dtype)
    w = rng.integers(0, 4, len(X)).astype(dtype)
    candidates = np.ascontiguousarray(X[[1, 9, 99, 999, 4999, 7]])
    closest = sq_distances(X, X[[0]])[:, 0]
    runs = []
    for n_threads in (1, 2):
        block_potentials = np.empty((n_blocks(len(X), len(candidates)), len(candidates)))
        kept = np.empty((len(candidates), len(X)))
        candidate_potentials(X, w, candidates, closest, block_potentials, n_threads, kept)
        runs.append((block_potentials, kept))
    assert runs[0][0].shape[0] > 1  # several blocks, or the test proves nothing
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("n_features", [2, 37])
def test_kept_distances_are_min_sq_distances_bitwise(rng, dtype, n_threads, n_features):
    """The candidates' distances k-means++ keeps are, bitwise, what min_sq_distances
    gives like_candidates (it may take either, _kmeans._KEEP_RATIO); without it, the
    row-wise sums agree to rounding."""
    from gmm_fast._lloyd import seed_form

    X = make_blobs(rng, 3001, n_features, 3).astype(dtype)
    candidates = np.ascontiguousarray(X[[4, 2000, 3000]])
    kept = np.empty((3, len(X)))
    candidate_potentials(X, None, candidates, np.full(len(X), np.inf),
                         np.empty((n_blocks(len(X), 3), 3)), n_threads, kept)
    for t in range(3):
        rowwise = np.full(len(X), np.inf)
        min_sq_distances(X, candidates[t], rowwise, n_threads)
        np.testing.assert_allclose(rowwise, kept[t], rtol=1e-13, atol=1e-300)
        if seed_form():  # the vector form runs from the AVX2 level on (baseline: row loops)
            like = np.full(len(X), np.inf)
            min_sq_distances(X, candidates[t], like, n_threads, like_candidates=True)
            np.testing.assert_array_equal(like, kept[t])


def test_candidate_potentials_checks_the_distances_shape(rng):
    X = make_blobs(rng, 50, 3, 2)
    block_potentials = np.empty((1, 2))
    with pytest.raises(ValueError, match="candidate_sq_dist"):
        candidate_potentials(X, None, X[:2].copy(), np.full(50, np.inf), block_potentials, 1,
                             np.empty((2, 49)))


def test_direct_paths_pad_the_centres_to_their_blocks(cpu_level):
    """The narrow path takes centres 4 at a time; the wide one 4 at a time then a last
    pair (k=10: 10 dot products per row, not 12); the GEMM path computes exactly k."""
    from gmm_fast._lloyd import padded_centers

    direct = cpu_level != "baseline"
    assert padded_centers(8, 10, 8) == (12 if direct else 10)  # narrow
    assert padded_centers(784, 10, 4) == 10  # wide (GEMM at baseline: 10 too)
    assert padded_centers(784, 9, 8) == (10 if direct else 9)
    assert padded_centers(64, 100, 8) == 100  # GEMM at every level


@pytest.mark.parametrize("n_features", [1, 2, 7, 16, 25, 40, 101])
@pytest.mark.parametrize("n_clusters", [1, 3, 9])
def test_direct_and_gemm_paths_agree(rng, dtype, n_features, n_clusters):
    """The direct paths (narrow data; wide rows with few centres, here d >= 40 with
    k <= 3 and d=101 with k=9 in float64 at AVX-512, fewer at AVX2; feature counts off the
    16-lane padding)
    and the GEMM path (taken on CPUs without AVX2, and otherwise) agree."""
    from gmm_fast._lloyd import use_direct_path

    X, w, shift, centers = make_step_input(rng, 3000, n_features, n_clusters, dtype)
    previous = use_direct_path(False)
    try:
        gemm = run_lloyd_step(X, w, shift, centers, n_threads=2)
    finally:
        use_direct_path(previous)
    direct = run_lloyd_step(X, w, shift, centers, n_threads=2)
    assert_step_matches_reference(X, w, shift, centers, gemm)
    assert_step_matches_reference(X, w, shift, centers, direct)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features, n_clusters", [(2, 5), (13, 3), (40, 2), (40, 12)])
@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_iterations_in_c_match_the_python_loop(rng, capsys, parallel_passes, dtype,
                                                     n_features, n_clusters, weighted):
    """``lloyd_iterations`` (Lloyd's loop in C) and the step-by-step loop in Python
    (taken with ``verbose``) reach bitwise the same centres, labels and iteration, on
    the narrow, row-wise and GEMM paths; also through a cluster left empty (a centre
    far from the data), which the C loop hands back to Python."""
    from gmm_fast._kmeans import lloyd

    X, sample_weight, shift, centers = make_step_input(rng, 3000, n_features, n_clusters, dtype)
    weight = sample_weight if weighted else None
    starts = [centers, centers.copy()]
    starts[1][-1] = 1e3  # (no sample nearest: empty after the first step)
    for start in starts:
        in_c = lloyd(X, weight, start, shift, 300, 1e-12, 2, verbose=False)
        in_python = lloyd(X, weight, start, shift, 300, 1e-12, 2, verbose=True)
        assert in_c[3] == in_python[3] and in_c[4] == in_python[4]
        np.testing.assert_array_equal(in_c[0], in_python[0])
        np.testing.assert_array_equal(in_c[2], in_python[2])
        assert in_c[1] == in_python[1]
    assert "Iteration 1" in capsys.readouterr().out
    # A cap on the iterations stops the C loop there, unconverged.
    capped = lloyd(X, weight, centers, shift, 1, 0.0, 2)
    assert capped[3] == 1 and not capped[4]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("shape", [(5001, 7), (1400, 600)], ids=["blocks", "tiles"])
def test_column_mean_and_variance_matches_numpy(rng, dtype, strided, n_threads, shape):
    """Lloyd's shift and its tolerance's scale (one read of X: tiles' means and spreads,
    merged) against a two-pass reference in extended precision, far from the origin
    too. The mean sums n terms in float64: within ~n eps of the sums of magnitudes. The
    variance adds, to that, the merges' differences of means, each rounded at |mean| eps:
    ~|mean| eps / std relative (4e-10 for the column of std 1e-3 at 1e3). The same
    answer on any number of threads (the blocks depend on the data only). "tiles": rows
    wide enough for several tiles per block, and a last tile short of 4 rows."""
    from gmm_fast._lloyd import column_mean_and_variance

    scales = np.resize([1, 10, 1e-3, 1, 1, 5, 1], shape[1])
    X = (rng.standard_normal(shape) * scales + 1e3).astype(dtype)
    if strided:
        X = X[::2, ::2]
    mean, variance = column_mean_and_variance(X, n_threads)
    exact = X.astype(np.longdouble)
    exact_mean = exact.mean(axis=0)
    exact_variance = ((exact - exact_mean) ** 2).mean(axis=0)
    eps = np.finfo(np.float64).eps
    n = len(X)
    np.testing.assert_allclose(mean, exact_mean.astype(np.float64), rtol=4 * n * eps)
    bound = 4 * n * eps + 4 * eps * np.abs(exact_mean) / np.sqrt(exact_variance)
    assert np.all(np.abs(variance / exact_variance - 1) <= bound.astype(np.float64))
    np.testing.assert_array_equal(column_mean_and_variance(X, 3 - n_threads)[1], variance)


def test_repeated_passes_give_the_same_fit(rng):
    """The CI gate's self-test slows Lloyd's passes by repeating their work
    (``repeat_passes``): the fit must not change (labels changed counted once)."""
    from gmm_fast._lloyd import repeat_passes

    X = make_blobs(rng, 5000, 3, 5)
    init = X[:5].copy()
    once = KMeans(5, init=init, n_init=1).fit(X)
    previous = repeat_passes(2)
    try:
        twice = KMeans(5, init=init, n_init=1).fit(X)
    finally:
        repeat_passes(previous)
    assert previous == 1 and twice.n_iter_ == once.n_iter_ > 2
    np.testing.assert_array_equal(twice.cluster_centers_, once.cluster_centers_)
    np.testing.assert_array_equal(twice.labels_, once.labels_)
    with pytest.raises(ValueError, match="times=0"):
        repeat_passes(0)
