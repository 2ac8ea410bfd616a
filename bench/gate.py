"""The CI speed gate of ``run.py --quick``: thresholds per CPU level, the check, the self-test.

``thresholds.json`` holds one table of speed-ups over scikit-learn per CPU level
(``LEVELS``): the same kernels run at different speeds on AVX-512, AVX2 and
baseline code paths while scikit-learn's BLAS moves less, so a table measured at
one level cannot gate another. Within a level, CPUs differ too (a Zen 4 and an Ice
Lake Xeon both run the AVX-512 kernels, at different speed-ups): each row keeps the
figure of every CPU measured at that level (``by_cpu``), and its threshold is the
margin times the lowest, so the gate holds on each of them. The gate takes the
table of the level gmm_fast runs at, or else the nearest lower level's (slower
kernels: more lenient thresholds), and says which. ``slow_down`` makes the kernels
do their work ``factor`` times per call, same answer, so CI can check that a real
2x regression fails the gate.
"""
import datetime
import functools
import importlib
import json
import os
import platform

import cases
import harness

#: CPU levels of gmm_fast's kernels, slowest first.
LEVELS = ("baseline", "avx2", "avx512")
_AVX512_FLAGS = {"avx512f", "avx512vl", "avx512bw", "avx512dq"}
_AVX2_FLAGS = {"avx2", "fma"}
LEVEL_VARIABLE = "GMM_FAST_CPU_LEVEL"

#: Default threshold = MARGIN x measured. With the E-step or Lloyd kernel 2x slower the
#: speed-ups measured 0.43-0.65 of their healthy figure where that kernel is most of an
#: iteration (avx2, Zen 3), healthy runs mostly >= 0.83 (bench/README.md, "The CI gate").
MARGIN = 0.7

#: The kernels ``slow_down`` repeats, as (module, the name that module calls them by).
SLOWED_KERNELS = (("gmm_fast._em", "estep"),)
#: Kernels whose loop runs in C, repeated from inside: (module, its setter of repeats).
#: Lloyd's iterations call their passes in C (``_lloyd.lloyd_iterations``).
REPEATED_KERNELS = (("gmm_fast._lloyd", "repeat_passes"),)


def level_from_cpuinfo(path="/proc/cpuinfo"):
    """The CPU level the flags of ``path`` allow; "baseline" off Linux x86-64."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return "baseline"
    flags = set(harness.cpuinfo(path).get("flags", "").split())
    if _AVX512_FLAGS <= flags:
        return "avx512"
    return "avx2" if _AVX2_FLAGS <= flags else "baseline"


def cpu_level():
    """``(level, how it was found)``: gmm_fast's own answer when it has one, else the CPU's."""
    import gmm_fast
    if hasattr(gmm_fast, "cpu_level"):
        level, source = gmm_fast.cpu_level(), "gmm_fast.cpu_level()"
    else:
        level = level_from_cpuinfo()
        source = "/proc/cpuinfo flags; this gmm_fast has no cpu_level()"
        if os.environ.get(LEVEL_VARIABLE):
            source += f"; {LEVEL_VARIABLE}={os.environ[LEVEL_VARIABLE]} ignored: it cannot cap it"
    if level not in LEVELS:
        raise ValueError(f"CPU level {level!r} from {source} should be one of {LEVELS}.")
    return level, source


def level_cap_ignored():
    """Whether GMM_FAST_CPU_LEVEL is set for a gmm_fast that cannot honour it."""
    import gmm_fast
    return bool(os.environ.get(LEVEL_VARIABLE)) and not hasattr(gmm_fast, "cpu_level")


def load(path):
    with open(path) as f:
        return json.load(f)


def select_table(thresholds, level):
    """``(table level, table)``: ``level``'s own, else the nearest lower level's, else
    ``(None, None)`` (a higher level's thresholds would fail a healthy slower build)."""
    tables = thresholds.get("levels", {})
    for candidate in reversed(LEVELS[:LEVELS.index(level) + 1]):
        if candidate in tables:
            return candidate, tables[candidate]
    return None, None


def cpu_id():
    """The CPU as a table records it: model name, family and model numbers."""
    fields = harness.cpuinfo()
    return (f"{fields.get('model name', 'unknown')} (family {fields.get('cpu family', '?')}, "
            f"model {fields.get('model', '?')})")


def measured_on(table):
    """``{cpu: record}`` of the CPUs a level's table was measured on (a table from
    before ``by_cpu`` has one record, its CPU named inside it)."""
    records = table.get("measured_on", {})
    return {records.get("cpu", "?"): records} if "date" in records else records


def describe_table(level, table_level, table):
    """The gate's first lines: which table gates this level, and where it came from."""
    if table is None:
        return [f"thresholds: no table for {level!r} or a lower level in thresholds.json: "
                f"measure one (bench/README.md, 'The CI gate')"]
    head = (f"thresholds: table {level!r}" if table_level == level else
            f"thresholds: no table for {level!r}; using {table_level!r}, the nearest lower "
            f"level (slower kernels: more lenient)")
    lines = [f"{head}, margin {table['margin']} x the lowest figure of the CPUs measured:"]
    for cpu, where in measured_on(table).items():
        lines.append(f"  {cpu}: {where.get('date', '?')} ({where.get('label', '')})")
    return lines


def speedup(row):
    """The row's speed-up over scikit-learn (sklearn time / gmm_fast time), or None when
    either time is missing or NOISY (load swamped it: its ratio means nothing)."""
    mine, theirs = row["results"].get("gmm_fast", {}), row["results"].get("sklearn", {})
    if "per_iter" not in mine or "ratio" not in theirs or mine["noisy"] or theirs["noisy"]:
        return None
    return theirs["ratio"]


def check(rows, table, remeasure, retries, log):
    """Failures (key, speed-up or reason, threshold) of the quick rows against ``table``.

    A row below its threshold, or not measured (NOISY), is measured again
    (``remeasure(row)`` -> a new row) up to ``retries`` times and its best speed-up
    kept: load from other jobs makes single runs slow at random, a real regression
    is slow every time.
    """
    failures = []
    for row in rows:
        entry = table["ratios"].get(row["key"])
        measured = speedup(row)
        if entry is None or entry.get("threshold") is None:
            log(f"  {row['key']}: not gated (speed-up "
                f"{'NOISY or missing' if measured is None else f'{measured:.2f}'})")
            continue
        if row["results"]["gmm_fast"].get("early_stop"):
            failures.append((row["key"], "gmm_fast stopped before max_iter (tol=0)",
                             entry["threshold"]))
            continue
        attempt = 0
        while (measured is None or measured < entry["threshold"]) and attempt < retries:
            attempt += 1
            retry = speedup(remeasure(row))
            log(f"  {row['key']}: retry {attempt}: speed-up "
                f"{'NOISY' if retry is None else f'{retry:.2f}'}")
            if retry is not None and (measured is None or retry > measured):
                measured = retry
        if measured is None:
            failures.append((row["key"], "every measurement NOISY", entry["threshold"]))
        elif measured < entry["threshold"]:
            failures.append((row["key"], measured, entry["threshold"]))
        else:
            log(f"  {row['key']}: speed-up {measured:.2f} >= {entry['threshold']:.2f} ok "
                f"({measured / entry['measured']:.2f} of measured)")
    return failures


def lowest(rows, remeasure, runs, log):
    """``{key: lowest speed-up}`` of each row over ``runs`` measurements (the row's
    own, then more from ``remeasure(row)``): a table from the slower runs is one a
    healthy build passes again on a loaded machine. A NOISY measurement does not
    count (up to ``runs`` more attempts); None where none was clean."""
    measured = {}
    for row in rows:
        clean = [] if speedup(row) is None else [speedup(row)]
        attempt = 1
        while len(clean) < runs and attempt < 2 * runs:
            attempt += 1
            again = speedup(remeasure(row))
            log(f"  {row['key']}: run {attempt}: speed-up "
                f"{'NOISY' if again is None else f'{again:.2f}'}")
            clean += [] if again is None else [again]
        measured[row["key"]] = min(clean) if clean else None
    return measured


def refresh(path, level, measured, runs, margin, label):
    """Record ``measured`` (``{key: speed-up}``, the lowest of ``runs``) as this CPU's
    figures in ``level``'s table of ``path``, and set each row's threshold to ``margin``
    x the lowest figure of the CPUs measured at that level. Other CPUs' figures, other
    rows and other levels are kept; GMM quick rows never measured stay null."""
    try:
        thresholds = load(path)
    except (OSError, ValueError):
        thresholds = {}
    tables = thresholds.get("levels", {})
    table = tables.get(level, {})
    records = measured_on(table)
    ratios = table.get("ratios", {})
    for entry in ratios.values():  # a table from before by_cpu: its one CPU's figures
        if "by_cpu" not in entry:
            (old_cpu,) = records
            entry["by_cpu"] = {} if entry["measured"] is None else {old_cpu: entry["measured"]}
    for n, d, k in cases.QUICK_GMM_WORKLOADS:
        for cov in cases.GMM_PEER_COVARIANCES + cases.GMM_SKLEARN_ONLY_COVARIANCES:
            for dtype in cases.DTYPES:
                ratios.setdefault(cases.case_key("gmm", n, d, k, dtype, cov), {"by_cpu": {}})
    cpu = cpu_id()
    for key, value in measured.items():
        figures = ratios.setdefault(key, {"by_cpu": {}})["by_cpu"]
        figures.pop(cpu, None)
        if value is not None:
            figures[cpu] = round(value, 3)
    for key, entry in ratios.items():
        lowest = min(entry["by_cpu"].values(), default=None)
        ratios[key] = {"measured": lowest,
                       "threshold": None if lowest is None else round(margin * lowest, 3),
                       "by_cpu": entry["by_cpu"]}
    records[cpu] = {"date": datetime.date.today().isoformat(),
                    "label": f"{label}{'; ' if label else ''}the lowest of {runs} quick runs",
                    "checkout": harness.environment_report()[0],
                    "cpus": f"{os.cpu_count()} logical cores", "level": level}
    tables[level] = {"measured_on": records, "margin": margin,
                     "ratios": dict(sorted(ratios.items()))}
    data = {
        "about": "Quick-mode gate (bench/run.py --quick): speed-up of gmm_fast over "
                 "scikit-learn (sklearn s/iter / gmm_fast s/iter, same run), one table per "
                 "CPU level gmm_fast runs at (baseline, avx2, avx512). Each row holds the "
                 "figure of every CPU measured at that level ('by_cpu'), 'measured' the "
                 "lowest of them; the gate uses its level's table, else the nearest lower "
                 "level's, and fails when a speed-up is below 'threshold' = margin x "
                 "'measured'. null: not gated. Record this CPU's figures with `python "
                 "bench/run.py --quick --refresh-thresholds` (see bench/README.md).",
        "levels": {name: tables[name] for name in LEVELS if name in tables},
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def _repeated(kernel, factor):
    """``kernel`` run ``factor`` times per call, the first call's result returned.

    The kernels overwrite their outputs from unchanged inputs, so the later calls
    write the same values; only ``lloyd_step``'s count of changed labels differs
    (0 the second time), hence the first result.
    """
    @functools.wraps(kernel)
    def slowed(*args, **kwargs):
        result = kernel(*args, **kwargs)
        for _ in range(factor - 1):
            kernel(*args, **kwargs)
        return result
    return slowed


def slow_down(factor):
    """Make gmm_fast's E-step and Lloyd kernels ``factor`` times slower in this process
    (the gate's self-test); returns the names patched."""
    patched = []
    if factor == 1:
        return patched
    for module_name, name in SLOWED_KERNELS:
        module = importlib.import_module(module_name)
        setattr(module, name, _repeated(getattr(module, name), factor))
        patched.append(f"{module_name}.{name}")
    for module_name, setter in REPEATED_KERNELS:
        module = importlib.import_module(module_name)
        if hasattr(module, setter):  # (a gmm_fast from before Lloyd's loop went to C)
            getattr(module, setter)(factor)
            patched.append(f"{module_name} passes (via {setter})")
        else:
            module = importlib.import_module("gmm_fast._kmeans")
            setattr(module, "lloyd_step", _repeated(module.lloyd_step, factor))
            patched.append("gmm_fast._kmeans.lloyd_step")
    return patched
