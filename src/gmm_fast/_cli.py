"""The ``gmm-fast`` command (also ``python -m gmm_fast``): fit, select, predict, score, demo.

Data comes from CSV/TSV or space-separated text (with or without a header), ``.npy``
or ``.npz`` files.
Every failure the user can cause (a missing or empty file, non-numeric or missing
cells, a model file of another kind, a bad option) ends with one line on stderr,
``gmm-fast: error: ...``, and exit status 1; argparse's usage errors exit with 2.
"""
import argparse
import contextlib
import csv
import os
import sys
import time
import warnings
import zipfile
import zlib

import numpy as np

MISSING = {"", "na", "nan", "null", "none", "n/a", "?"}


class CommandError(Exception):
    """A user error: printed as one line, exit status 1."""


# --- reading data ---------------------------------------------------------------------

class _Named:
    """An array with column names, so the estimators record ``feature_names_in_``."""

    def __init__(self, X, names):
        self._X = X
        self.columns = list(names)
        self.iloc = None  # marks a table for gmm_fast's feature-name check

    def __array__(self, dtype=None, copy=None):
        return self._X if dtype is None else self._X.astype(dtype)

    def __len__(self):
        return len(self._X)


class Table:
    """Numeric data read from a file: ``X``, optional ``sample_weight`` and column names."""

    def __init__(self, X, sample_weight=None, names=None, source=""):
        self.X = X
        self.sample_weight = sample_weight
        self.names = names
        self.source = source

    def features(self):
        """X as the estimators should see it (named when the file had a header)."""
        return _Named(self.X, self.names) if self.names is not None else self.X


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _delimiter(path, first_line, delimiter):
    if delimiter is not None:
        return "\t" if delimiter in ("tab", "\\t") else delimiter
    extension = os.path.splitext(path)[1].lower()
    if extension in (".tsv", ".tab"):
        return "\t"
    if extension == ".csv":
        return ","
    for candidate in ("\t", ",", ";"):
        if candidate in first_line:
            return candidate
    return " " if " " in first_line.strip() else ","  # (" ": runs of spaces, numpy.savetxt)


def _resolve(spec, names, n_columns, what):
    """Column indices from a comma-separated list of names or 0-based indices."""
    indices = []
    for token in (t.strip() for t in spec.split(",")):
        if names is not None and token in names:
            indices.append(names.index(token))
        elif token.lstrip("-").isdigit() and -n_columns <= int(token) < n_columns:
            indices.append(int(token) % n_columns)
        else:
            known = (f"names {', '.join(names)} or " if names is not None else "")
            raise CommandError(f"{what}: no column {token!r}; the file has {known}indices "
                               f"0 to {n_columns - 1}.")
    return indices


def _describe_cells(cells, limit=5):
    text = ", ".join(cells[:limit])
    return text + (f" and {len(cells) - limit} more" if len(cells) > limit else "")


def _parse_columns(path, records, line_numbers, indices, names, allow_missing=False):
    """The chosen text columns as a float64 array, with precise errors for bad cells
    (missing cells are NaN with ``allow_missing``)."""
    out = np.empty((len(records), len(indices)))
    missing, infinite = [], []
    for j, index in enumerate(indices):
        column = [record[index].strip() for record in records]
        name = repr(names[index]) if names is not None else str(index)
        try:
            out[:, j] = np.array(column, dtype=np.float64)
        except ValueError:
            bad = [(i, cell) for i, cell in enumerate(column) if not _is_number(cell)]
            text = [(i, cell) for i, cell in bad if cell.lower() not in MISSING]
            if text:
                raise CommandError(
                    f"{path}: column {name} is not numeric: "
                    + _describe_cells([f"line {line_numbers[i]} has {cell!r}"
                                       for i, cell in text])
                    + "; choose numeric columns with --columns.") from None
            out[:, j] = [float(cell) if _is_number(cell) else np.nan for cell in column]
        for i in np.flatnonzero(~np.isfinite(out[:, j])):
            (missing if np.isnan(out[i, j]) else infinite).append(
                f"line {line_numbers[i]} column {name}")
    for cells, what in ((missing if not allow_missing else [], "missing/NaN"),
                        (infinite, "infinite")):
        if cells:
            advice = ("remove them" if what == "infinite" else
                      "remove or impute them, or fit the mixture on the observed cells "
                      "with --missing marginalize")
            raise CommandError(f"{path}: {len(cells)} {what} cell(s) at "
                               f"{_describe_cells(sorted(cells, key=_line_key))}; {advice}.")
    return out


def _line_key(cell):
    return int(cell.split()[1])


def _read_text(path, args):
    with open(path, newline="", encoding="utf-8-sig") as file:
        content = file.read()
    lines = content.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise CommandError(f"{path} is empty: no rows to read.")
    delimiter = _delimiter(path, first, args.delimiter)
    records, line_numbers = [], []
    # Space-separated text: a run of spaces is one separator, and the line's ends are
    # not fields.
    spaces = delimiter == " "
    try:
        for record in csv.reader([line.strip() for line in lines] if spaces else lines,
                                 delimiter=delimiter, skipinitialspace=spaces):
            line_numbers.append(len(line_numbers) + 1)
            records.append(record)
    except csv.Error as exc:
        raise CommandError(f"{path}: line {len(line_numbers) + 1} cannot be read as "
                           f"delimited text ({exc}).") from None
    kept = [(n, r) for n, r in zip(line_numbers, records) if any(c.strip() for c in r)]
    line_numbers, records = [n for n, _ in kept], [r for _, r in kept]
    if not records:
        raise CommandError(f"{path} is empty: no rows with values to read.")
    header = args.header
    if header is None:  # a first row with a non-numeric, non-missing cell is a header
        header = any(not _is_number(c) and c.strip().lower() not in MISSING for c in records[0])
    names = None
    if header:
        names = [c.strip() for c in records[0]]
        records, line_numbers = records[1:], line_numbers[1:]
        if not records:
            raise CommandError(f"{path} has a header but no data rows.")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:  # columns are found by name: each name must say which one
            raise CommandError(f"{path}: the header repeats the column name(s) "
                               f"{', '.join(map(repr, repeated))}; rename them.")
    n_columns = len(names) if names is not None else len(records[0])
    for number, record in zip(line_numbers, records):
        if len(record) != n_columns:
            raise CommandError(f"{path}: line {number} has {len(record)} fields, expected "
                               f"{n_columns} (delimiter {delimiter!r}; set it with "
                               "--delimiter).")
    feature_ids, weight_id = _choose_columns(args, names, n_columns)
    X = _parse_columns(path, records, line_numbers, feature_ids, names,
                       allow_missing=_allow_missing(args))
    weights = None
    if weight_id is not None:
        weights = _parse_columns(path, records, line_numbers, [weight_id], names)[:, 0]
    feature_names = [names[i] for i in feature_ids] if names is not None else None
    return Table(X, weights, feature_names, path)


def _allow_missing(args):
    return getattr(args, "missing", "error") == "marginalize"


def _choose_columns(args, names, n_columns):
    weight_id = None
    if getattr(args, "sample_weight_column", None) is not None:
        weight_id = _resolve(args.sample_weight_column, names, n_columns,
                             "--sample-weight-column")[0]
    if args.columns:
        feature_ids = _resolve(args.columns, names, n_columns, "--columns")
    else:
        feature_ids = [i for i in range(n_columns) if i != weight_id]
    if not feature_ids:
        raise CommandError("No feature columns left: choose them with --columns.")
    return feature_ids, weight_id


_ARRAY_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error,
                 NotImplementedError)  # (zipfile: a damaged compression method)


def _array_error(path, exc):
    if "pickle" in str(exc):  # numpy suggests allow_pickle=True, which is not safe here
        return CommandError(f"{path} holds Python objects (pickled), not numeric arrays; "
                            "gmm-fast does not read those.")
    return CommandError(f"{path} is not a readable .npy/.npz array file "
                        f"({' '.join(str(exc).split())}).")


def _read_array(path, args):
    with open(path, "rb") as file:  # (closed here whatever np.load makes of it)
        try:
            return _array_table(path, np.load(file, allow_pickle=False), args)
        except _ARRAY_ERRORS as exc:
            raise _array_error(path, exc) from None


def _array_table(path, data, args):
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            keys = list(data.files)
            if not keys:
                raise CommandError(f"{path} is empty: the .npz holds no arrays.")
            key = args.key if args.key is not None else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise CommandError(f"{path} holds several arrays ({', '.join(keys)}): choose "
                                   "one with --key.")
            if key not in keys:
                raise CommandError(f"{path} has no array {key!r}; it holds "
                                   f"{', '.join(keys)}.")
            data = data[key]
        if not isinstance(data, np.ndarray):  # a plain zip's member: bytes
            raise CommandError(f"{path}: entry {key!r} is not a NumPy array.")
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise CommandError(f"{path}: expected a 1-D or 2-D array, got shape {data.shape}.")
    if data.size == 0:
        raise CommandError(f"{path} is empty: the array has shape {data.shape}.")
    if data.dtype.kind not in "biuf":
        raise CommandError(f"{path}: the array is not numeric (dtype {data.dtype}).")
    feature_ids, weight_id = _choose_columns(args, None, data.shape[1])
    X = np.asarray(data[:, feature_ids])
    bad = np.argwhere(~(np.isfinite(X) | (np.isnan(X) & _allow_missing(args)))
                      ) if data.dtype.kind == "f" else []
    if len(bad):
        cells = [f"row {i} column {feature_ids[j]}" for i, j in bad]
        raise CommandError(f"{path}: {len(cells)} NaN/infinite cell(s) at "
                           f"{_describe_cells(cells)}; remove or impute them.")
    weights = None if weight_id is None else data[:, weight_id].astype(np.float64)
    return Table(X, weights, None, path)


def read_table(path, args):
    """Read the data file named on the command line (CSV/TSV, .npy or .npz)."""
    if not os.path.exists(path):
        raise CommandError(f"No such file: {path}")
    if os.path.isdir(path):
        raise CommandError(f"{path} is a directory, not a data file.")
    if os.path.getsize(path) == 0:
        raise CommandError(f"{path} is empty: no rows to read.")
    if os.path.splitext(path)[1].lower() in (".npy", ".npz"):
        return _read_array(path, args)
    try:
        return _read_text(path, args)
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not a text (CSV/TSV) file; for NumPy arrays use "
                           ".npy or .npz.") from None


# --- writing --------------------------------------------------------------------------

def _write_csv(path, header, columns):
    """Columns (int or float arrays) as CSV to ``path`` ('-' is stdout)."""
    formats = ["{:d}" if np.asarray(c).dtype.kind in "iub" else "{:.10g}" for c in columns]
    rows = zip(*[np.asarray(c).tolist() for c in columns])
    lines = [",".join(header)] + [",".join(f.format(v) for f, v in zip(formats, row))
                                  for row in rows]
    text = "\n".join(lines) + "\n"
    if path == "-":
        sys.stdout.write(text)
    else:
        with open(path, "w") as file:
            file.write(text)


def _outputs(model, X, kind):
    """Header and columns of ``predict`` (labels, probabilities) or ``score`` outputs."""
    header, columns = [], []
    gmm = not hasattr(model, "cluster_centers_")
    if kind == "predict":
        header.append("label")
        columns.append(model.predict(X).astype(np.int64))
        if gmm:
            resp = model.predict_proba(X)
            header += [f"prob_{k}" for k in range(resp.shape[1])]
            columns += list(resp.T)
    else:
        if gmm:
            header.append("log_density")
            columns.append(model.score_samples(X))
        else:
            header.append("distance")
            columns.append(model.transform(X).min(axis=1))
    if gmm and hasattr(model, "offset_"):
        header.append("outlier")
        columns.append((model.predict_outliers(X) == -1).astype(np.int64))
    return header, columns


def _plot(function, *arguments, path):
    """Draw a picture, or say how to get one when matplotlib is missing."""
    from ._plotting import PlottingUnavailable
    try:
        function(*arguments, path)
    except PlottingUnavailable as exc:
        print(f"gmm-fast: no picture written to {path}: {exc}", file=sys.stderr)
        return False
    if not os.path.splitext(path)[1]:  # matplotlib then writes a PNG, adding the extension
        path += ".png"
    print(f"Picture written to {path}.", file=sys.stderr)
    return True


# --- commands -------------------------------------------------------------------------

def _summary(model, table):
    n_samples, n_features = table.X.shape
    lines = []
    if hasattr(model, "cluster_centers_"):
        k = len(model.cluster_centers_)
        sizes = np.bincount(model.labels_, weights=table.sample_weight, minlength=k)
        weights, means = sizes / sizes.sum(), model.cluster_centers_
        lines.append(f"KMeans: {k} clusters, {n_samples} samples x {n_features} features")
        lines.append(f"converged: {'yes' if model.converged_ else 'no'} after "
                     f"{model.n_iter_} iterations; inertia {model.inertia_:.6g}")
    else:
        from ._selection import _criteria
        from ._validation import check_sample_weight
        sample_weight = check_sample_weight(table.sample_weight, n_samples, np.float64)
        criteria = _criteria(model, table.features(), sample_weight)
        weights, means = model.weights_, model.means_
        lines.append(f"GaussianMixture: {len(weights)} components, covariance_type="
                     f"{model.covariance_type!r}, {n_samples} samples x {n_features} features")
        lines.append(f"converged: {'yes' if model.converged_ else 'no'} after "
                     f"{model.n_iter_} iterations; log-likelihood "
                     f"{criteria['log_likelihood']:.6f}; BIC {criteria['bic']:.4f} "
                     "(lower is better)")
        if hasattr(model, "offset_"):
            lines.append(f"outlier threshold (log-density): {model.offset_:.6g}")
    names = table.names or [str(i) for i in range(n_features)]
    lines.append("component  weight  mean (" + ", ".join(names) + ")")
    for k, (weight, mean) in enumerate(zip(weights, means)):
        lines.append(f"{k:9d}  {weight:6.4f}  [" + ", ".join(f"{m:.6g}" for m in mean) + "]")
    return "\n".join(lines)


def _threads(args):
    from ._threads import MAX_THREADS
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise CommandError(f"--threads={args.threads} should be from 1 to {MAX_THREADS}.")
    return args.threads


def _or_default(value, default):
    """An option's value, its default when not given (0 is a value)."""
    return default if value is None else value


def _sort(args):
    return None if args.sort_components == "none" else args.sort_components


def command_fit(args):
    from ._gaussian_mixture import GaussianMixture
    from ._kmeans import KMeans
    from ._persistence import save

    table = read_table(args.data, args)
    n_threads = _threads(args)
    if args.model == "kmeans":
        if args.contamination is not None:
            raise CommandError("--contamination needs --model gmm (k-means has no density).")
        if _allow_missing(args):
            raise CommandError("--missing marginalize needs --model gmm (EM on the observed "
                               "cells).")
        model = KMeans(args.k, n_init=args.n_init, random_state=args.random_state,
                       max_iter=_or_default(args.max_iter, 300), n_threads=n_threads,
                       sort_components=_sort(args), verbose=int(args.verbose))
    else:
        # Live progress: each start, and with --verbose the lower bound per iteration.
        model = GaussianMixture(args.k, covariance_type=args.covariance_type,
                                n_init=args.n_init, random_state=args.random_state,
                                max_iter=_or_default(args.max_iter, 100), tol=args.tol,
                                n_threads=n_threads, sort_components=_sort(args),
                                contamination=args.contamination,
                                missing_values=args.missing,
                                verbose=2 if args.verbose else int(args.n_init > 1),
                                verbose_interval=1 if args.verbose else 10)
    if args.n_init > 1:
        print(f"Fitting {type(model).__name__} from {args.n_init} starts...", file=sys.stderr)
    start = time.perf_counter()
    # Progress goes to stderr: stdout may be carrying the labels CSV (-o -).
    with contextlib.redirect_stdout(sys.stderr):
        model.fit(table.features(), sample_weight=table.sample_weight)
    seconds = time.perf_counter() - start
    report = sys.stderr if args.output == "-" else sys.stdout  # (stdout: the CSV)
    print(_summary(model, table), file=report)
    print(f"fit time: {seconds:.3f} s", file=report)
    if args.output:
        header, columns = _outputs(model, table.features(), "predict")
        _write_csv(args.output, header, columns)
        if args.output != "-":
            print(f"Labels written to {args.output}.", file=sys.stderr)
    if args.save:
        save(model, args.save)
        print(f"Model saved to {args.save}.", file=sys.stderr)
    if args.plot:
        from ._plotting import plot_fit
        _plot(plot_fit, model, table.features(), path=args.plot)
    return 0


def _parse_ks(text):
    ks = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                low, high = part.split("-", 1)
                ks.extend(range(int(low), int(high) + 1))
            else:
                ks.append(int(part))
    except ValueError:
        raise CommandError(f"-k {text!r}: expected numbers like 3, 1-9 or 1,2,4.") from None
    return ks


def command_select(args):
    from ._persistence import save
    from ._selection import select_model

    table = read_table(args.data, args)
    covariance_types = [t.strip() for t in args.covariance_types.split(",")]

    def progress(done, total, row):
        if args.quiet:
            return
        # The grid's values are at --tol; the contenders are refined after the grid.
        status = (f"failed: {row['reason']}" if row["failed"]
                  else f"{args.criterion.upper()} {row[args.criterion]:.4f} at tol={args.tol:g}")
        print(f"[{done}/{total}] k={row['n_components']} {row['covariance_type']}: {status} "
              f"({row['seconds']:.2f} s)", file=sys.stderr)

    selection = select_model(table.features(), _parse_ks(args.k), covariance_types,
                             args.criterion, n_init=args.n_init,
                             random_state=args.random_state,
                             sample_weight=table.sample_weight,
                             max_iter=_or_default(args.max_iter, 100),
                             tol=args.tol, n_threads=_threads(args),
                             sort_components=_sort(args), callback=progress,
                             missing_values=args.missing)
    refined = [f"k={row['n_components']} {row['covariance_type']}" for row in selection.rows
               if row["refined"]]
    if refined and not args.quiet:
        print(f"Run on to final_tol after the grid (the table shows their final values): "
              f"{', '.join(refined)}.", file=sys.stderr)
    print(selection.format())
    if args.save:
        save(selection.best_model, args.save)
        print(f"Best model saved to {args.save}.", file=sys.stderr)
    if args.plot:
        from ._plotting import plot_selection
        _plot(plot_selection, selection, path=args.plot)
    return 0


def _load_for(args):
    from ._persistence import load
    model = load(args.model_file)
    if args.threads is not None:
        model.set_params(n_threads=_threads(args))
    return model


def _apply(args, kind):
    model = _load_for(args)
    table = read_table(args.data, args)
    fitted_names = getattr(model, "feature_names_in_", None)
    if fitted_names is not None and table.names is not None and not args.columns:
        # Pick the model's columns by name from a file with a header.
        missing = [n for n in fitted_names if n not in table.names]
        if missing:
            raise CommandError(f"{args.data} lacks the model's column(s) "
                               f"{', '.join(missing)}.")
        order = [table.names.index(n) for n in fitted_names]
        table = Table(table.X[:, order], table.sample_weight, list(fitted_names), table.source)
    if table.X.shape[1] != model.n_features_in_:
        raise CommandError(f"{args.data} has {table.X.shape[1]} feature columns but the model "
                           f"expects {model.n_features_in_}; choose them with --columns.")
    from ._validation import check_sample_weight
    weights = check_sample_weight(table.sample_weight, len(table.X), np.float64)
    header, columns = _outputs(model, table.features(), kind)
    if kind == "score" and header[0] == "log_density":
        mean = float(weights @ columns[0].astype(np.float64) / weights.sum())
        print(f"mean log-likelihood per sample: {mean:.6f}", file=sys.stderr)
    if "outlier" in header:
        print(f"outliers: {int(columns[-1].sum())} of {len(table.X)}", file=sys.stderr)
    _write_csv(args.output, header, columns)
    return 0


def command_predict(args):
    return _apply(args, "predict")


def command_score(args):
    return _apply(args, "score")


def command_demo(args):
    from ._demo import run_demo
    run_demo(random_state=args.random_state, plot=args.plot)
    return 0


# --- the parser -----------------------------------------------------------------------

def _data_options(parser):
    parser.add_argument("data", help="CSV/TSV (with or without header), .npy or .npz file")
    parser.add_argument("--columns", help="feature columns: names or 0-based indices, "
                                          "comma-separated (default: all others)")
    parser.add_argument("--delimiter", help="field separator of text files (default: from "
                                            "the extension or the first line: tab, comma, "
                                            "semicolon, else spaces; 'tab' for TSV)")
    header = parser.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None,
                        help="the first row holds column names")
    header.add_argument("--no-header", dest="header", action="store_false",
                        help="the first row is data")
    parser.add_argument("--key", help="array name inside an .npz file")
    parser.add_argument("--sample-weight-column",
                        help="column of frequency weights (name or index)")
    parser.add_argument("--threads", type=int, help="OpenMP threads (default: all)")
    parser.add_argument("--missing", choices=("error", "marginalize"), default="error",
                        help="empty/NaN cells: an error (default), or, for a Gaussian "
                             "mixture, fitted and scored by each row's observed cells")


def _fit_options(parser):
    parser.add_argument("--n-init", type=int, default=1, help="starts (default 1)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--max-iter", type=int, help="EM/Lloyd iterations per start")
    parser.add_argument("--tol", type=float, default=1e-3, help="EM tolerance (default 1e-3)")
    parser.add_argument("--sort-components", choices=("weights", "means", "none"),
                        default="weights", help="canonical component order (default: "
                                                "largest weight first)")
    parser.add_argument("--save", metavar="MODEL", help="write the fitted model (.npz)")
    parser.add_argument("--plot", metavar="PNG", help="draw a picture (needs matplotlib)")


class _ShowConfig(argparse.Action):
    """``--version``: gmm_fast.show_config()'s report (computed only when asked)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from ._cpu import config_report
        print(config_report())
        parser.exit()


def build_parser():
    """The argparse parser of ``gmm-fast``."""
    parser = argparse.ArgumentParser(
        prog="gmm-fast", description="Gaussian mixtures and k-means from the command line.")
    parser.add_argument("--version", action=_ShowConfig,
                        help="print the version, CPU level, OpenMP, BLAS and threads; exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser("fit", help="fit a model, print a summary, write labels")
    _data_options(fit)
    fit.add_argument("--model", choices=("gmm", "kmeans"), default="gmm")
    fit.add_argument("-k", type=int, default=2, help="components / clusters (default 2)")
    fit.add_argument("--covariance-type", default="full",
                     choices=("full", "tied", "diag", "spherical"))
    fit.add_argument("--contamination", type=float,
                     help="fraction of training data flagged as outliers (GMM)")
    fit.add_argument("-o", "--output", metavar="CSV",
                     help="write labels (and probabilities) here ('-': stdout)")
    fit.add_argument("--verbose", action="store_true", help="print the lower bound per "
                                                            "iteration")
    _fit_options(fit)
    fit.set_defaults(run=command_fit)

    select = commands.add_parser("select", help="choose n_components and covariance type")
    _data_options(select)
    select.add_argument("-k", default="1-9", help="numbers of components: 1-9 or 1,2,4")
    select.add_argument("--covariance-types", default="full,tied,diag,spherical")
    select.add_argument("--criterion", choices=("bic", "aic", "icl"), default="bic")
    select.add_argument("--quiet", action="store_true", help="no progress lines")
    _fit_options(select)
    select.set_defaults(run=command_select)

    for name, run, help_text in (
            ("predict", command_predict, "labels (and probabilities) of new data"),
            ("score", command_score, "log-densities (GMM) or distances (k-means) of new data")):
        sub = commands.add_parser(name, help=help_text + " with a saved model; outlier "
                                                         "flags when the model has a threshold")
        sub.add_argument("model_file", help="model written by fit/select --save")
        _data_options(sub)
        sub.add_argument("-o", "--output", default="-", metavar="CSV",
                         help="output CSV (default: stdout)")
        sub.set_defaults(run=run)

    demo = commands.add_parser("demo", help="k-means vs Gaussian mixture on built-in data")
    demo.add_argument("--random-state", type=int, default=0)
    demo.add_argument("--plot", metavar="PNG", help="draw both fits side by side")
    demo.set_defaults(run=command_demo)
    return parser


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv=None):
    """Entry point of the ``gmm-fast`` command; returns the exit status."""
    args = build_parser().parse_args(argv)

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"gmm-fast: warning: {_one_line(message)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", ResourceWarning)  # (numpy's, not the user's)
        warnings.showwarning = show_warning
        try:
            return args.run(args)
        except (CommandError, ValueError, TypeError, OSError, MemoryError) as exc:
            print(f"gmm-fast: error: {_one_line(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("gmm-fast: interrupted", file=sys.stderr)
            return 130
        finally:
            sys.stdout.flush()
