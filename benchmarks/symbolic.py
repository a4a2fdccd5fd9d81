"""Symbolic regression on the AI Feynman equations: jaxgen against Operon and gplearn.

Protocol (after SRBench, La Cava et al. 2021): for each equation, 1,000 training and 1,000 test
points are sampled uniformly from the variables' ranges; Gaussian noise with standard deviation
``noise * rms(y)`` is added to the training targets. Every tool gets the same wall-clock budget
per equation. Reported per equation and tool:

* exact symbolic recovery: after rounding the model's constants to 3 decimals, the SymPy
  difference from the truth is a constant or the ratio is a non-zero constant; together with a
  test R^2 above 0.999;
* test R^2 (on noise-free test targets);
* expression evaluations per second during the search (each tool's own count).

A separate measurement times the population evaluator alone: 1,000 random expressions of up to
30 nodes on 1,000 rows, grouped by operator versus the vmapped per-expression evaluator.

Threads: Operon runs with ``n_threads`` (default 1), gplearn with one job, JAX uses every core
it sees (two here).

Usage:
    python benchmarks/symbolic.py --budget 60 --noise 0 0.01 --tools jaxgen jaxgen-units operon gplearn
    python benchmarks/symbolic.py --budget 20 --equations 8   # first 8 of the default list
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import sympy

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "feynman_dev.csv"
RESULTS = Path(__file__).resolve().parent / "results"

# 18 equations spanning the database's difficulty: products and ratios, square roots,
# exponentials, trigonometry, relativistic factors, sums of terms.
DEFAULT_EQUATIONS = (
    "I.12.1",
    "I.14.3",
    "II.3.24",
    "I.10.7",
    "I.12.11",
    "I.34.8",
    "I.39.11",
    "I.47.23",
    "II.11.3",
    "I.6.2",
    "I.13.12",
    "I.18.4",
    "I.29.16",
    "I.40.1",
    "II.6.15a",
    "II.35.18",
    "III.14.14",
    "I.15.3t",
)
OPERATORS = ("+", "-", "*", "/", "sqrt", "square", "exp", "log", "sin", "cos")


def load_equations(path: Path) -> dict[str, dict]:
    with open(path) as f:
        return {r["filename"]: r for r in csv.DictReader(f)}


def sample(row: dict, rng: np.random.Generator, n: int):
    k = int(row["n_vars"])
    names = [row[f"v{i}_name"] for i in range(1, k + 1)]
    X = np.stack(
        [
            rng.uniform(float(row[f"v{i}_low"]), float(row[f"v{i}_high"]), n)
            for i in range(1, k + 1)
        ],
        axis=1,
    )
    # the sampling ranges are positive, so the symbols are too (sqrt(a) sqrt(b) = sqrt(a b))
    positive = all(float(row[f"v{i}_low"]) > 0 for i in range(1, k + 1))
    syms = sympy.symbols(names, positive=True) if positive else sympy.symbols(names, real=True)
    truth = sympy.sympify(row["formula_sympy"], locals=dict(zip(names, syms)))
    f = sympy.lambdify(syms, truth, "numpy")
    y = np.broadcast_to(np.asarray(f(*X.T), np.float64), (n,)).copy()
    return names, syms, truth, X, y


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def _round_floats(expr, digits: int = 3):
    return expr.xreplace({a: sympy.Float(round(float(a), digits)) for a in expr.atoms(sympy.Float)})


def exact_recovery(model, truth, seconds: int = 20) -> bool:
    """SRBench's symbolic solution check (difference or ratio is a constant), time-limited."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        m = _round_floats(model)
        diff = sympy.simplify(m - truth)
        if diff.free_symbols == set():
            return True
        ratio = sympy.simplify(m / truth)
        return ratio.free_symbols == set() and ratio != 0
    except _Timeout:
        return False
    except Exception:  # noqa: BLE001  SymPy failing to simplify counts as not recovered
        return False
    finally:
        signal.alarm(0)


def r2(pred, y) -> float:
    pred = np.asarray(pred, np.float64)
    if not np.all(np.isfinite(pred)):
        return float("-inf")
    return float(1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean()) ** 2))


# --------------------------------------------------------------------------------------------
# Tools. Each returns (sympy model, test predictions, evaluations, seconds).


def run_jaxgen(row, names, syms, Xtr, ytr, Xte, budget, seed, use_units):
    import jax
    import jax.numpy as jnp

    import jaxgen as jg

    kw = {}
    if use_units:
        k = int(row["n_vars"])
        kw = {
            "units": [row[f"v{i}_units"] for i in range(1, k + 1)],
            "output_units": [float(v) for v in row["output_dims_m_s_kg_T_V"].split()],
        }
    t = time.perf_counter()
    res = jg.symbolic.fit(
        jax.random.key(seed),
        Xtr,
        ytr,
        time_budget=budget,
        variable_names=names,
        operators=OPERATORS,
        **kw,
    )
    secs = time.perf_counter() - t
    model = res.best.sympy()
    model = model.subs({sympy.Symbol(n, real=True): s for n, s in zip(names, syms)})
    # the search's names may differ from SymPy's parse of them; map by name as a fallback
    model = model.subs({s_: dict(zip(names, syms))[s_.name] for s_ in model.free_symbols
                        if s_.name in names})
    pred = np.asarray(res.best.to_jax()(jnp.asarray(Xte, jnp.float32)), np.float64)
    return model, pred, res.num_evals, secs, str(res.best)


def run_operon(row, names, syms, Xtr, ytr, Xte, budget, seed, threads):
    from pyoperon.sklearn import SymbolicRegressor

    m = SymbolicRegressor(
        allowed_symbols="add,sub,mul,div,constant,variable,sqrt,square,exp,log,sin,cos",
        max_time=int(budget),
        n_threads=threads,
        random_state=seed,
        max_length=30,
        generations=10**6,
        max_evaluations=10**9,
    )
    t = time.perf_counter()
    m.fit(Xtr, ytr)
    secs = time.perf_counter() - t
    text = m.get_model_string(m.model_, 12, list(names))
    model = sympy.sympify(text.replace("^", "**"), locals={n: s for n, s in zip(names, syms)})
    return model, m.predict(Xte), int(m.stats_["evaluation_count"]), secs, text


def run_gplearn(row, names, syms, Xtr, ytr, Xte, budget, seed):
    from gplearn.genetic import SymbolicRegressor

    m = SymbolicRegressor(
        population_size=1000,
        generations=1,
        warm_start=True,
        random_state=seed,
        function_set=("add", "sub", "mul", "div", "sqrt", "log", "sin", "cos"),
        parsimony_coefficient=0.001,
        n_jobs=1,
        verbose=0,
    )
    t = time.perf_counter()
    gens = 0
    while time.perf_counter() - t < budget:
        gens += 1
        m.set_params(generations=gens)
        m.fit(Xtr, ytr)
    secs = time.perf_counter() - t
    text = str(m._program)
    loc = {f"X{i}": s for i, s in enumerate(syms)}
    loc.update(
        add=lambda a, b: a + b,
        sub=lambda a, b: a - b,
        mul=lambda a, b: a * b,
        div=lambda a, b: a / b,
        sqrt=lambda a: sympy.sqrt(sympy.Abs(a)),
        log=lambda a: sympy.log(sympy.Abs(a)),
        sin=sympy.sin,
        cos=sympy.cos,
    )
    model = sympy.sympify(text, locals=loc)
    return model, m.predict(Xte), gens * 1000, secs, text


def evaluator_throughput(num_expressions=1000, num_rows=1000, max_nodes=30, repeats=5):
    """Expressions per second of the grouped and the vmapped evaluators on random trees."""
    import jax
    import jax.numpy as jnp

    from jaxgen.symbolic.evaluate import evaluate_population, naive_population
    from jaxgen.symbolic.genetic import Grammar
    from jaxgen.symbolic.operators import OperatorSet
    from jaxgen.symbolic.tree import encode

    ops = OperatorSet(OPERATORS)
    g = Grammar(ops, 5)
    rng = np.random.default_rng(0)
    trees = []
    while len(trees) < num_expressions:
        t = g.random_tree(rng, int(rng.integers(1, max_nodes + 1)))
        if len(t) <= max_nodes:
            trees.append(t)
    arrays = [jnp.asarray(a) for a in encode(trees, 32, 16, ops.arity_table())]
    X = jnp.asarray(rng.uniform(0.5, 2.0, (num_rows, 5)), jnp.float32)
    out = {
        "num_expressions": num_expressions,
        "num_rows": num_rows,
        "max_nodes": max_nodes,
        "mean_nodes": float(np.mean([len(t) for t in trees])),
    }
    for name, fn in (("grouped", evaluate_population), ("vmapped", naive_population)):
        f = jax.jit(fn, static_argnames=("operators",))
        f(*arrays, X, operators=ops).block_until_ready()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            f(*arrays, X, operators=ops).block_until_ready()
            times.append(time.perf_counter() - t0)
        out[f"{name}_evals_per_second"] = num_expressions / float(np.median(times))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=60.0, help="seconds per equation and tool")
    p.add_argument(
        "--equations",
        nargs="*",
        default=None,
        help="equation names (e.g. I.12.1), or one integer: the first N defaults",
    )
    p.add_argument("--noise", type=float, nargs="*", default=[0.0, 0.01])
    p.add_argument("--tools", nargs="*", default=["jaxgen", "jaxgen-units", "operon", "gplearn"])
    p.add_argument("--operon-threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args(argv)

    rows = load_equations(args.data)
    eqs = args.equations
    if not eqs:
        eqs = list(DEFAULT_EQUATIONS)
    elif len(eqs) == 1 and eqs[0].isdigit():
        eqs = list(DEFAULT_EQUATIONS[: int(eqs[0])])
    missing = [e for e in eqs if e not in rows]
    if missing:
        sys.exit(f"Unknown equations {missing}; names are the `filename` column of {args.data}.")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out_path = args.out or RESULTS / (
        f"symbolic_b{int(args.budget)}_n{len(eqs)}_noise{'-'.join(str(x) for x in args.noise)}.json"
    )
    report = {
        "protocol": {
            "budget_s": args.budget,
            "equations": eqs,
            "noise": args.noise,
            "tools": args.tools,
            "operon_threads": args.operon_threads,
            "train_points": 1000,
            "test_points": 1000,
            "cpu_count": os.cpu_count(),
        },
        "results": [],
    }
    if any(t.startswith("jaxgen") for t in args.tools):
        # Compile the evaluators for the padded shapes the equations use (1,000 rows; up to 4
        # or 8 columns) so that the budgets measure search, not one-off XLA compilation.
        import jax

        import jaxgen as jg

        t0 = time.perf_counter()
        wrng = np.random.default_rng(0)
        for d in (1, 5):
            Xw = wrng.uniform(1, 2, (1000, d))
            jg.symbolic.fit(jax.random.key(0), Xw, Xw.sum(1) + 0.1 * wrng.normal(size=1000),
                            max_iterations=1, operators=OPERATORS, time_budget=None)
        report["protocol"]["warmup_s"] = time.perf_counter() - t0
        print(f"warm-up (compilation) {time.perf_counter() - t0:.1f}s", flush=True)
    if not args.skip_throughput:
        report["evaluator"] = evaluator_throughput()
        print("evaluator:", report["evaluator"], flush=True)

    for noise in args.noise:
        for name in eqs:
            row = rows[name]
            rng = np.random.default_rng(args.seed)
            names, syms, truth, Xtr, ytr = sample(row, rng, 1000)
            _, _, _, Xte, yte = sample(row, rng, 1000)
            if noise:
                ytr = ytr + noise * np.sqrt(np.mean(ytr**2)) * rng.normal(size=ytr.shape)
            for tool in args.tools:
                try:
                    if tool == "jaxgen":
                        res = run_jaxgen(
                            row, names, syms, Xtr, ytr, Xte, args.budget, args.seed, False
                        )
                    elif tool == "jaxgen-units":
                        res = run_jaxgen(
                            row, names, syms, Xtr, ytr, Xte, args.budget, args.seed, True
                        )
                    elif tool == "operon":
                        res = run_operon(
                            row,
                            names,
                            syms,
                            Xtr,
                            ytr,
                            Xte,
                            args.budget,
                            args.seed,
                            args.operon_threads,
                        )
                    elif tool == "gplearn":
                        res = run_gplearn(row, names, syms, Xtr, ytr, Xte, args.budget, args.seed)
                    else:
                        sys.exit(f"Unknown tool {tool!r}.")
                    model, pred, evals, secs, text = res
                    score = r2(pred, yte)
                    exact = bool(score > 0.999 and exact_recovery(model, truth))
                    entry = {
                        "equation": name,
                        "noise": noise,
                        "tool": tool,
                        "exact": exact,
                        "test_r2": score,
                        "evals": evals,
                        "seconds": secs,
                        "evals_per_second": evals / secs,
                        "model": text,
                    }
                except Exception as err:  # noqa: BLE001  a tool crashing on one equation is a result too
                    entry = {
                        "equation": name,
                        "noise": noise,
                        "tool": tool,
                        "exact": False,
                        "test_r2": float("nan"),
                        "error": f"{type(err).__name__}: {err}",
                    }
                report["results"].append(entry)
                print(json.dumps(entry), flush=True)
                with open(out_path, "w") as f:
                    json.dump(report, f, indent=1)

    summary = {}
    for tool in args.tools:
        for noise in args.noise:
            rs = [r for r in report["results"] if r["tool"] == tool and r["noise"] == noise]
            eps = [r["evals_per_second"] for r in rs if "evals_per_second" in r]
            summary[f"{tool}@{noise}"] = {
                "exact": sum(r["exact"] for r in rs),
                "of": len(rs),
                "median_test_r2": float(np.nanmedian([r["test_r2"] for r in rs])) if rs else None,
                "median_evals_per_second": float(np.median(eps)) if eps else None,
            }
    report["summary"] = summary
    with open(out_path, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(summary, indent=1))
    print("wrote", out_path)


if __name__ == "__main__":
    main()
