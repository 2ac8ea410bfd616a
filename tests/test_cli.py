"""The gmm-fast command: in-process main(argv) for behaviour, a subprocess for the real thing."""
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import gmm_reference as ref
from gmm_fast import GaussianMixture, KMeans, load
from gmm_fast._cli import main
from gmm_fast._datasets import make_tilted_blobs


@pytest.fixture(scope="module")
def data():
    X, truth = make_tilted_blobs(n_samples=400, random_state=0)
    return X, truth


@pytest.fixture
def csv_path(tmp_path, data):
    path = tmp_path / "points.csv"
    weights = np.arange(len(data[0])) % 3 + 1
    rows = ["x,label,y,w"] + [f"{float(a)!r},g{t},{float(b)!r},{w}" for (a, b), t, w
                              in zip(data[0], data[1], weights)]
    path.write_text("\n".join(rows) + "\n")
    return path


def run(argv, capsys):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_fit_gmm_writes_labels_model_and_summary(tmp_path, csv_path, data, capsys):
    labels_path, model_path = tmp_path / "labels.csv", tmp_path / "model.npz"
    status, out, err = run(["fit", csv_path, "--columns", "x,y", "-k", 3, "--n-init", 2,
                            "--random-state", 1, "-o", labels_path, "--save", model_path,
                            "--sample-weight-column", "w", "--verbose"], capsys)
    assert status == 0, err
    X = data[0]
    weights = np.arange(len(X)) % 3 + 1
    reference = GaussianMixture(3, n_init=2, random_state=1, sort_components="weights").fit(
        X, sample_weight=weights)
    assert "GaussianMixture: 3 components, covariance_type='full', 400 samples x 2 features" in out
    assert "converged: yes" in out and "BIC" in out and "mean (x, y)" in out
    assert f"{reference.weights_[0]:6.4f}" in out
    # Live progress on stderr: both starts, and the lower bound of every iteration.
    assert "Initialization 0" in err and "Initialization 1" in err
    iterations = [line for line in err.splitlines() if line.strip().startswith("Iteration")]
    assert len(iterations) >= len(reference.lower_bounds_)
    assert f"lower bound {reference.lower_bounds_[-1]:.10g}" in err
    table = np.genfromtxt(labels_path, delimiter=",", names=True)
    assert table.dtype.names == ("label", "prob_0", "prob_1", "prob_2")
    np.testing.assert_array_equal(table["label"], reference.predict(X))
    np.testing.assert_allclose(table["prob_1"], reference.predict_proba(X)[:, 1], atol=1e-9)
    model = load(model_path)
    np.testing.assert_array_equal(model.means_, reference.means_)
    assert model.feature_names_in_.tolist() == ["x", "y"]
    assert "warning" not in err


def test_fit_kmeans_from_tsv_without_header(tmp_path, data, capsys):
    path = tmp_path / "points.tsv"
    np.savetxt(path, data[0], delimiter="\t")
    status, out, err = run(["fit", path, "--model", "kmeans", "-k", 3, "-o", "-",
                            "--sort-components", "means"], capsys)
    assert status == 0, err
    reference = KMeans(3, random_state=0, sort_components="means").fit(data[0])
    assert "KMeans: 3 clusters, 400 samples x 2 features" in err  # (stdout: the CSV alone)
    assert out.startswith("label\n")
    labels = [int(line) for line in out.split("label\n", 1)[1].split()]
    np.testing.assert_array_equal(labels, reference.labels_)


def test_npy_npz_predict_score_and_outliers(tmp_path, data, capsys):
    X = data[0]
    np.save(tmp_path / "X.npy", X)
    np.savez(tmp_path / "both.npz", X=X, other=np.zeros(3))
    model_path = tmp_path / "m.npz"
    assert run(["fit", tmp_path / "X.npy", "-k", 3, "--contamination", 0.05, "--save",
                model_path], capsys)[0] == 0
    model = load(model_path)
    status, out, err = run(["predict", model_path, tmp_path / "both.npz", "--key", "X"],
                           capsys)
    assert status == 0, err
    table = np.genfromtxt(out.splitlines(), delimiter=",", names=True)
    assert table.dtype.names[-1] == "outlier"
    np.testing.assert_array_equal(table["label"], model.predict(X))
    assert int(table["outlier"].sum()) == 20 and "outliers: 20 of 400" in err
    status, out, err = run(["score", model_path, tmp_path / "X.npy", "-o",
                            tmp_path / "s.csv"], capsys)
    assert status == 0, err
    scores = np.genfromtxt(tmp_path / "s.csv", delimiter=",", names=True)
    np.testing.assert_allclose(scores["log_density"], model.score_samples(X), rtol=1e-9)
    assert f"mean log-likelihood per sample: {model.score(X):.6f}" in err
    status, _, err = run(["predict", model_path, tmp_path / "both.npz"], capsys)
    assert status == 1 and "several arrays (X, other): choose one with --key" in err


def test_select_prints_table_marks_best_and_saves(tmp_path, data, capsys):
    np.save(tmp_path / "X.npy", data[0])
    status, out, err = run(["select", tmp_path / "X.npy", "-k", "1-4", "--covariance-types",
                            "full,spherical", "--save", tmp_path / "best.npz"], capsys)
    assert status == 0, err
    best_line = [line for line in out.splitlines() if line.startswith("*  ")]
    assert len(best_line) == 1 and " 3  full" in best_line[0]
    assert "best by BIC (lower is better): 3 components, covariance_type='full'" in out
    assert err.count("[") >= 8 and "[8/8]" in err  # progress lines
    # the progress lines' BICs are at --tol; the contenders' final values are in the table
    assert "BIC " in err and " at tol=0.001 (" in err
    refined = err.split("Run on to final_tol after the grid (the table shows their final "
                        "values): ")[1].splitlines()[0]
    assert "k=3 full" in refined
    assert load(tmp_path / "best.npz").n_components == 3


@pytest.mark.parametrize("content, message", [
    ("", "is empty: no rows to read"),
    ("a,b\n", "has a header but no data rows"),
    ("a,b\n1,2\n3,oops\n", "column 'b' is not numeric: line 3 has 'oops'"),
    ("1,2\n3,\n,4\nnan,5\n", "3 missing/NaN cell(s) at line 2 column 1, line 3 column 0, "
                             "line 4 column 0; remove or impute them"),
    ("1,2\n3,4,5\n", "line 2 has 3 fields, expected 2"),
    ("1,2\n3,inf\n", "1 infinite cell(s) at line 2 column 1"),
    (",,\n,,\n", "is empty: no rows with values to read"),
    ('"",""\n', "is empty: no rows with values to read"),
    ("1,2\n3," + "4" * 200_000 + "\n", "line 2 cannot be read as delimited text"),
    ("x,x\n1,2\n3,4\n", "the header repeats the column name(s) 'x'; rename them"),
])
def test_bad_data_is_one_line_error(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    status, out, err = run(["fit", path], capsys)
    assert status == 1
    assert err.startswith("gmm-fast: error: ") and err.count("\n") == 1
    assert message in err
    assert "Traceback" not in err


def test_other_errors(tmp_path, data, capsys):
    np.save(tmp_path / "X.npy", data[0])
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan], [2.0, 3.0]]))
    (tmp_path / "not_model.npz").write_bytes(b"junk")
    cases = [
        (["fit", tmp_path / "missing.csv"], "No such file"),
        (["fit", tmp_path / "nan.npy"], "1 NaN/infinite cell(s) at row 0 column 1"),
        (["predict", tmp_path / "X.npy", tmp_path / "X.npy"], "not a gmm_fast model file"),
        (["predict", tmp_path / "not_model.npz", tmp_path / "X.npy"],
         "not a gmm_fast model file"),
        (["fit", tmp_path / "X.npy", "--columns", "5"], "--columns: no column '5'"),
        (["fit", tmp_path / "X.npy", "-k", 0], "n_components"),
        (["fit", tmp_path / "X.npy", "--model", "kmeans", "--contamination", 0.1],
         "--contamination needs --model gmm"),
        (["select", tmp_path / "X.npy", "-k", "a-b"], "expected numbers like 3, 1-9"),
    ]
    for argv, message in cases:
        status, _, err = run(argv, capsys)
        assert status == 1, argv
        assert err.startswith("gmm-fast: error: ") and err.count("\n") == 1, err
        assert message in err, (argv, err)


def test_predict_wrong_width(tmp_path, data, capsys):
    np.save(tmp_path / "X.npy", data[0])
    np.save(tmp_path / "X3.npy", np.c_[data[0], data[0][:, :1]])
    assert run(["fit", tmp_path / "X.npy", "--save", tmp_path / "m.npz"], capsys)[0] == 0
    status, _, err = run(["predict", tmp_path / "m.npz", tmp_path / "X3.npy"], capsys)
    assert status == 1 and "has 3 feature columns but the model expects 2" in err


def test_without_matplotlib_commands_work_and_say_how(tmp_path, data, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    np.save(tmp_path / "X.npy", data[0])
    status, out, err = run(["fit", tmp_path / "X.npy", "--plot", tmp_path / "p.png"], capsys)
    assert status == 0 and "GaussianMixture" in out
    assert 'pip install "gmm_fast[plot]"' in err and not (tmp_path / "p.png").exists()
    status, out, err = run(["demo", "--plot", tmp_path / "d.png"], capsys)
    assert status == 0 and 'pip install "gmm_fast[plot]"' in out
    assert "GaussianMixture: adjusted Rand index" in out


def test_demo_in_process(capsys):
    status, out, _ = run(["demo"], capsys)
    assert status == 0
    lines = out.splitlines()
    kmeans_ari = float(lines[1].split("adjusted Rand index ")[1].split(",")[0])
    gmm_ari = float(lines[2].split("adjusted Rand index ")[1].split(",")[0])
    # The point of the demo: the full-covariance mixture recovers tilted groups.
    assert gmm_ari > 0.75 and gmm_ari > kmeans_ari + 0.2
    # The log-likelihood it prints is the fitted model's on that data (checked with the
    # plain-numpy oracle), and both fits report a time.
    total, per_sample = re.search(r"log-likelihood (\S+) \((\S+) per sample\)", lines[2]).groups()
    X, truth = make_tilted_blobs(random_state=0)
    gm = GaussianMixture(len(np.unique(truth)), n_init=3, random_state=0).fit(X)
    log_prob_norm, _ = ref.estep(X, gm.weights_, gm.means_, gm.precisions_cholesky_, "full")
    assert float(per_sample) == pytest.approx(log_prob_norm.mean(), abs=1e-4)
    assert float(total) == pytest.approx(log_prob_norm.sum(), abs=0.1)
    for line in lines[1:3]:
        assert float(re.search(r"iterations, (\S+) ms$", line).group(1)) > 0


def test_console_script_and_module_in_subprocess(tmp_path, data):
    np.savetxt(tmp_path / "X.csv", data[0], delimiter=",")
    done = subprocess.run([sys.executable, "-m", "gmm_fast", "fit", str(tmp_path / "X.csv"),
                           "-k", "3"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "GaussianMixture: 3 components" in done.stdout
    done = subprocess.run([sys.executable, "-m", "gmm_fast", "fit", str(tmp_path / "no.csv")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr == f"gmm-fast: error: No such file: {tmp_path / 'no.csv'}\n"
    done = subprocess.run([sys.executable, "-m", "gmm_fast", "fit"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "usage: gmm-fast fit" in done.stderr


def test_space_separated_text_is_read(tmp_path, data, capsys):
    """numpy.savetxt's default: values separated by (runs of) spaces (the first row was
    taken for a header and reported as a non-numeric column)."""
    path = tmp_path / "points.txt"
    np.savetxt(path, data[0])
    path.write_text(path.read_text().replace(" ", "   ", 5))
    status, out, err = run(["fit", path, "-k", 3, "--random-state", 0], capsys)
    assert status == 0, err
    assert "400 samples x 2 features" in out


def test_fit_to_stdout_keeps_the_csv_clean(tmp_path, data, capsys):
    """With -o - stdout carries only the labels CSV; the summary goes to stderr."""
    np.save(tmp_path / "X.npy", data[0])
    status, out, err = run(["fit", tmp_path / "X.npy", "-k", 3, "-o", "-"], capsys)
    assert status == 0, err
    assert out.splitlines()[0] == "label,prob_0,prob_1,prob_2"
    assert len(out.splitlines()) == 401
    assert "GaussianMixture: 3 components" in err and "fit time" in err


def test_max_iter_zero_is_passed_on(tmp_path, data, capsys):
    np.save(tmp_path / "X.npy", data[0])
    status, out, err = run(["fit", tmp_path / "X.npy", "--max-iter", 0], capsys)
    assert status == 0, err
    assert "after 0 iterations" in out
    status, out, err = run(["fit", tmp_path / "X.npy", "--model", "kmeans", "--max-iter", 0],
                           capsys)
    assert status == 1 and "max_iter=0 should be an integer >= 1" in err


@pytest.mark.parametrize("weights, message", [
    ([0, 0, 0, 0], "sample_weight sums to zero"),
    ([1, -1, 1, 1], "sample_weight must be >= 0"),
])
def test_score_checks_weights(tmp_path, data, capsys, weights, message):
    X = data[0][:4]
    model_path = tmp_path / "m.npz"
    np.save(tmp_path / "X.npy", data[0])
    assert run(["fit", tmp_path / "X.npy", "-k", 1, "--save", model_path], capsys)[0] == 0
    np.save(tmp_path / "Xw.npy", np.column_stack([X, weights]))
    status, out, err = run(["score", model_path, tmp_path / "Xw.npy", "--columns", "0,1",
                            "--sample-weight-column", 2], capsys)
    assert status == 1 and message in err and err.count("\n") == 1


def test_damaged_and_foreign_files_are_one_line_errors(tmp_path, data, capsys):
    np.save(tmp_path / "X.npy", data[0])
    model_path = tmp_path / "m.npz"
    assert run(["fit", tmp_path / "X.npy", "--save", model_path], capsys)[0] == 0
    blob = model_path.read_bytes()
    (tmp_path / "half.npz").write_bytes(blob[:len(blob) // 2])
    damaged = bytearray(blob)
    damaged[len(blob) // 3] ^= 0xFF
    (tmp_path / "damaged.npz").write_bytes(bytes(damaged))
    with zipfile.ZipFile(tmp_path / "plain.npz", "w") as archive:
        archive.writestr("data.csv", "1,2\n")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases = [
        (["fit", tmp_path / "half.npz"], "is not a readable .npy/.npz array file"),
        (["fit", tmp_path / "plain.npz"], "entry 'data.csv' is not a NumPy array"),
        (["fit", tmp_path / "objects.npy"], "holds Python objects (pickled)"),
        (["predict", tmp_path / "half.npz", tmp_path / "X.npy"], "not a gmm_fast model file"),
        (["predict", tmp_path / "damaged.npz", tmp_path / "X.npy"], "gmm_fast model file"),
        (["fit", tmp_path / "X.npy", "--threads", 3_000_000_000], "--threads=3000000000 should"),
        (["predict", model_path, tmp_path / "X.npy", "--threads", 10**20], "--threads="),
    ]
    for argv, message in cases:
        status, out, err = run(argv, capsys)
        assert status == 1, argv
        assert err.startswith("gmm-fast: error: ") and err.count("\n") == 1, err
        assert message in err and "allow_pickle" not in err


def test_plot_without_extension_names_the_png(tmp_path, data, capsys):
    pytest.importorskip("matplotlib")
    np.save(tmp_path / "X.npy", data[0])
    status, out, err = run(["fit", tmp_path / "X.npy", "--plot", tmp_path / "picture"], capsys)
    assert status == 0, err
    assert f"Picture written to {tmp_path / 'picture.png'}." in err
    assert (tmp_path / "picture.png").exists()


def test_adjusted_rand_index_matches_sklearn():
    from sklearn.metrics import adjusted_rand_score
    from gmm_fast._demo import adjusted_rand_index
    rng = np.random.default_rng(0)
    cases = [([], []), ([3], [7]), ([0, 0], [1, 1]), ([0, 1], [0, 0]), ([0, 1, 2], [5, 6, 7]),
             (["a", "b", "a"], [1, 1, 0])]
    cases += [(rng.integers(k, size=n), rng.integers(j, size=n))
              for n, k, j in [(2, 2, 2), (10, 3, 4), (200, 5, 2), (50, 1, 3)]]
    for truth, pred in cases:
        assert adjusted_rand_index(truth, pred) == pytest.approx(
            adjusted_rand_score(truth, pred), abs=1e-12), (truth, pred)
    with pytest.raises(ValueError, match="have 3 and 2 labels"):
        adjusted_rand_index([0, 1, 1], [0, 1])
