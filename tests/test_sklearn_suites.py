"""scikit-learn's own test files for GaussianMixture and KMeans, run against gmm_fast.

The contract of the drop-in: ``sklearn/mixture/tests/test_gaussian_mixture.py`` and
``sklearn/cluster/tests/test_k_means.py``, copied from the installed scikit-learn at
test time with only their estimator imports swapped for gmm_fast's, pass. They run in
one pytest subprocess (sklearn's fixtures and warning filters, not ours) from a
temporary folder holding the rewritten files and a conftest that

- gives ``global_random_seed`` (42, as sklearn's conftest by default) and
  ``global_dtype`` (float32 and float64: sklearn skips float32 unless asked to,
  gmm_fast computes in both);
- turns sklearn's warning filters into errors, as sklearn's CI does;
- skips the tests of ``EXCLUDED`` below, each with its reason;
- writes every test's outcome to a JSON file, which the tests here read.

A failure lists each failing sklearn test with its error. The exclusions are checked
against what was collected: a rule that no longer matches anything fails too, so the
list stays true when the scikit-learn pin moves (pyproject.toml's ``test`` extra).
"""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn")
# The series the exclusions below were checked against (pyproject.toml pins it for the
# test extra; Python 3.10 cannot install it, and gets an older scikit-learn).
SKLEARN_SERIES = "1.9"
if sys.version_info < (3, 11):
    pytest.skip(f"scikit-learn {SKLEARN_SERIES} needs Python >= 3.11", allow_module_level=True)

SUITES = {
    "test_gaussian_mixture.py": "mixture/tests/test_gaussian_mixture.py",
    "test_k_means.py": "cluster/tests/test_k_means.py",
}

# The only edits made to sklearn's files: each import line, as it must appear once,
# and what replaces it. (MiniBatchKMeans and k_means stay sklearn's: excluded below.)
IMPORT_REWRITES = {
    "test_gaussian_mixture.py": [
        ("from sklearn.cluster import KMeans\n", "from gmm_fast import KMeans\n"),
        ("from sklearn.mixture import GaussianMixture\n",
         "from gmm_fast import GaussianMixture\n"),
    ],
    "test_k_means.py": [
        ("from sklearn.cluster import KMeans, MiniBatchKMeans, k_means, kmeans_plusplus\n",
         "from gmm_fast import KMeans, kmeans_plusplus\n"
         "from sklearn.cluster import MiniBatchKMeans, k_means\n"),
    ],
}

# Excluded tests: (file, test function, parameter id) -> the reason. The function is a
# regular expression matched in full against the test's name, the parameter id one
# searched in its parametrisation's id (None: every parametrisation). A test is
# excluded by the first rule that matches it, in the order written here.
_GM, _KM = "test_gaussian_mixture.py", "test_k_means.py"
_PRIVATE = "calls scikit-learn's private functions or methods"
_SKLEARN_ONLY = ("runs scikit-learn's own code only (private helpers, or the k_means "
                 "function): no gmm_fast code runs, so a pass would say nothing of gmm_fast")
_ARRAY_API = ("array API inputs (torch, cupy, array_api_strict): gmm_fast takes numpy "
              "arrays (sklearn skips these too unless SCIPY_ARRAY_API=1)")
_ELKAN = "needs algorithm='elkan' (gmm_fast runs Lloyd's algorithm only)"
_MINIBATCH = "needs MiniBatchKMeans (not part of gmm_fast)"
EXCLUDED = {
    # GaussianMixture
    (_GM, "test_gaussian_mixture_precisions_init", None): (
        _PRIVATE + ": _initialize, _calculate_precisions and sklearn's _set_parameters "
        "signature (gmm_fast's checks the same through precisions_init, "
        "test_gaussian_mixture.py)"),
    (_GM, "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters", None): (
        _PRIVATE + ": mocks sklearn's _estimate_gaussian_parameters"),
    (_GM, r"test_suffstat_sk_(full|tied|diag)|test_gaussian_suffstat_sk_spherical"
          r"|test_compute_log_det_cholesky|test_gaussian_mixture_log_probabilities", None):
        _SKLEARN_ONLY,
    (_GM, r"test_gaussian_mixture_(array_api_compliance"
          r"|raises_where_array_api_not_implemented)", None): _ARRAY_API,
    # KMeans: other estimators and algorithms first, then what is private
    (_KM, r"test_minibatch_\w+", None): _MINIBATCH,
    (_KM, r"\w+", r"MiniBatchKMeans"): _MINIBATCH,
    (_KM, r"\w*elkan\w*", None): _ELKAN,
    (_KM, r"\w+", r"elkan"): _ELKAN,
    (_KM, r"test_kmeans_init_auto_with_initial_centroids|test_n_init_auto", None): (
        _PRIVATE + ": reads the private attribute _n_init (n_init='auto' is checked in "
        "test_kmeans.py)"),
    (_KM, r"test_sample_weight_(init|zero)", None): (
        _PRIVATE + ": _init_centroids (weighted seeding: test_weight_equivalence.py)"),
    (_KM, r"test_relocate_empty_clusters|test_euclidean_distance|test_inertia"
          r"|test_is_same_clustering|test_k_means_function", None): _SKLEARN_ONLY,
}

def _rules():
    return dict(EXCLUDED)


_CONFTEST = '''
import json
import re

import numpy as np
import pytest
from sklearn.utils._testing import get_pytest_filterwarning_lines

RULES = json.loads({rules!r})
RESULTS = {results!r}
outcomes = {{}}
matched = set()
excluded = {{}}


@pytest.fixture(params=[42])
def global_random_seed(request):
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def global_dtype(request):
    return request.param


def pytest_configure(config):
    for line in get_pytest_filterwarning_lines():
        config.addinivalue_line("filterwarnings", line)
    # pytest's notice about sklearn's own parametrize (a generator): not gmm_fast's concern
    config.addinivalue_line("filterwarnings", "ignore::pytest.PytestRemovedIn10Warning")


def _reason(item):
    name = item.originalname or item.name
    param = item.callspec.id if hasattr(item, "callspec") else ""
    for index, (file, function, pattern, reason) in enumerate(RULES):
        if (item.path.name == file and re.fullmatch(function, name)
                and (pattern is None or re.search(pattern, param))):
            matched.add(index)
            return reason
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        reason = _reason(item)
        if reason is not None:
            excluded[item.nodeid] = reason
            item.add_marker(pytest.mark.skip(reason="excluded: " + reason))


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        previous = outcomes.get(report.nodeid)
        if previous is None or previous["outcome"] == "passed":
            outcomes[report.nodeid] = {{
                "outcome": report.outcome,
                "excluded": excluded.get(report.nodeid),
                "error": "" if report.passed else str(report.longrepr)[-3000:]}}


def pytest_sessionfinish(session):
    with open(RESULTS, "w") as f:
        json.dump({{"outcomes": outcomes, "unmatched": [
            RULES[i] for i in range(len(RULES)) if i not in matched]}}, f)
'''


def rewrite(name, source):
    """sklearn's test file with its estimator imports swapped for gmm_fast's."""
    for old, new in IMPORT_REWRITES[name]:
        assert source.count(old) == 1, f"{name}: import line not found once: {old!r}"
        source = source.replace(old, new)
    return source


def run_suites(folder, extra_args=()):
    """Run the rewritten files in ``folder``; returns the parsed results and the output."""
    folder = Path(folder)
    root = Path(sklearn.__file__).parent
    for name, relative in SUITES.items():
        (folder / name).write_text(rewrite(name, (root / relative).read_text()))
    rules = [[file, function, pattern, reason]
             for (file, function, pattern), reason in _rules().items()]
    results = folder / "results.json"
    (folder / "conftest.py").write_text(textwrap.dedent(_CONFTEST.format(
        rules=json.dumps(rules), results=str(results))))
    env = dict(os.environ, SKLEARN_SKIP_NETWORK_TESTS="1")
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(folder), "-o", "addopts=", "-o", "filterwarnings=", *extra_args,
         *SUITES],
        cwd=folder, env=env, capture_output=True, text=True)
    if not results.exists():
        raise AssertionError(f"the sklearn suites did not run:\n{process.stdout}"
                             f"\n{process.stderr}")
    return json.loads(results.read_text()), process.stdout


def test_sklearn_series():
    """The exclusions hold for one minor series: moving it means checking them again."""
    assert sklearn.__version__.startswith(SKLEARN_SERIES + "."), sklearn.__version__


@pytest.fixture(scope="module")
def suite_results(tmp_path_factory):
    return run_suites(tmp_path_factory.mktemp("sklearn_suites"))


def _counts(outcomes, file):
    counts = {"passed": 0, "excluded": 0, "skipped": 0, "failed": 0}
    for nodeid, result in outcomes.items():
        if nodeid.startswith(file):
            key = ("excluded" if result["excluded"] else result["outcome"])
            counts[key] += 1
    return counts


def _exclusion_counts(outcomes, file):
    counts = {}
    for nodeid, result in outcomes.items():
        if nodeid.startswith(file) and result["excluded"]:
            reason = result["excluded"]
            counts[reason] = counts.get(reason, 0) + 1
    return counts


@pytest.mark.parametrize("file", list(SUITES))
def test_sklearn_suite_passes(suite_results, file):
    """Every test of sklearn's file passes but the excluded ones (which are reported)."""
    results, output = suite_results
    outcomes = results["outcomes"]
    counts = _counts(outcomes, file)
    print(f"{file}: {counts}")
    for reason, count in _exclusion_counts(outcomes, file).items():
        print(f"  excluded {count}: {reason}")
    failed = {nodeid: result["error"] for nodeid, result in outcomes.items()
              if nodeid.startswith(file) and result["outcome"] == "failed"}
    assert counts["passed"] > 0, output[-5000:]
    assert not failed, f"{len(failed)} of sklearn's tests failed:\n" + "\n\n".join(
        f"{nodeid}\n{error}" for nodeid, error in sorted(failed.items()))


def test_exclusions_all_match(suite_results):
    """An exclusion that matches no test of the installed sklearn is stale."""
    results, _ = suite_results
    assert not results["unmatched"], results["unmatched"]
