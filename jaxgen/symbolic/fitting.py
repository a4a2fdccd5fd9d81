"""``fit``: find the expression behind data."""

from __future__ import annotations

import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key, check_same_length, drop_nonfinite
from .genetic import Grammar, simplify_identities
from .operators import CONST, DEFAULT_OPERATORS, Operator, OperatorSet
from .search import SearchConfig, SymbolicFit, hall_to_front, run_search
from .selection import SELECTION_RULES, select
from .tree import complexity, num_constants, to_callable
from .units import buckingham_pi, dimension_penalty_fn, parse_units, units_matrix


def _rng_from_key(key) -> np.random.Generator:
    """Host generator for the genetic operators, seeded from the JAX key (deterministic)."""
    data = np.asarray(jax.random.key_data(key)).ravel().astype(np.uint64)
    return np.random.default_rng(data.tolist())


def fit(
    key: PRNGKeyArray,
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    *,
    time_budget: float | None = 60.0,
    max_evals: int | None = None,
    max_iterations: int | None = None,
    operators: OperatorSet | Sequence[str | Operator] = DEFAULT_OPERATORS,
    variable_names: Sequence[str] | None = None,
    weights: Float[Array, " n"] | None = None,
    units: Sequence | None = None,
    output_units=None,
    dimensional_analysis: str | None = None,
    selection: str = "best",
    exact_tol: float = 1e-10,
    config: SearchConfig | None = None,
    progress: bool = False,
    backend: str = "jax",
) -> SymbolicFit:
    """Search for a closed-form expression ``y ~ f(X)``.

    Evolves islands of expressions (PySR's algorithm, Cranmer 2023, arXiv:2305.01582) with the
    population evaluated and its constants fitted in JAX, until the time budget, the evaluation
    budget or the iteration limit is reached, or an expression fits exactly.

    Args:
        key: PRNG key; the search is deterministic for a fixed key when it is limited by
            ``max_evals`` or ``max_iterations`` rather than by time.
        X: inputs ``(n, d)`` (1-D is read as one column).
        y: targets ``(n,)``.
        time_budget: seconds (``None``: no time limit; then give ``max_evals`` or
            ``max_iterations``).
        max_evals: stop after this many expression evaluations on the data.
        max_iterations: stop after this many iterations.
        operators: operator names (``+ - * / pow neg sqrt exp log sin cos tanh abs square cube
            inv``), :class:`Operator` objects (custom JAX functions) or an :class:`OperatorSet`.
        variable_names: names of the columns (default ``x0, x1, ...``).
        weights: non-negative row weights, e.g. ``1 / sigma**2`` for known noise levels.
        units: units of each input column: strings such as ``"m s^-2 kg"`` over the base
            units ``m s kg T V``, or exponent vectors of length 5 (see
            :mod:`jaxgen.symbolic.units`).
        output_units: units of ``y`` (needed for ``dimensional_analysis="pi"``).
        dimensional_analysis: with units, ``"pi"`` (the default when ``output_units`` is
            given; otherwise ``"penalty"``) first rewrites the problem in dimensionless
            groups (Buckingham pi, as AI Feynman does) and searches for
            ``y / prefactor = g(pi)``; ``"penalty"`` searches the original variables and keeps
            only dimensionally consistent expressions (inconsistent ones are penalized as
            parents and never enter the results).
        selection: rule that picks ``best`` from the Pareto front: ``"best"`` (PySR's: the
            largest drop in log-loss per unit complexity among near-best fits), ``"accuracy"``
            or ``"score"``.
        exact_tol: stop early when the weighted MSE falls below ``exact_tol * var(y)``.
        config: search knobs (:class:`SearchConfig`).
        progress: show a progress bar with the lowest loss.
        backend: ``"jax"`` (this engine) or ``"pysr"`` (PySR, if it and Julia are installed).

    Returns:
        A :class:`SymbolicFit` with ``best`` and ``pareto``. Interrupting the search (Ctrl-C)
        returns the best expressions found so far, with ``stopped == "interrupted"``.

    Example:
        ```python
        X = jax.random.uniform(key, (500, 2), minval=1, maxval=3)
        y = X[:, 0] * X[:, 1]
        result = jg.symbolic.fit(key, X, y, time_budget=10.0)
        result.best.sympy()        # x0*x1
        ```
    """
    start = time.perf_counter()
    key = check_key(key)
    X, y, weights, names = prepare_data(X, y, weights, variable_names)
    if not isinstance(operators, OperatorSet):
        operators = OperatorSet(operators)
    if selection not in SELECTION_RULES:
        raise ValueError(f"Unknown selection {selection!r}; choose one of {SELECTION_RULES}.")
    check_budget(time_budget, max_evals, max_iterations)
    config = SearchConfig() if config is None else config
    if backend == "pysr":
        from .pysr_backend import fit_pysr

        return fit_pysr(key, X, y, weights, operators, names, time_budget=time_budget,
                        max_evals=max_evals, max_iterations=max_iterations, selection=selection,
                        config=config)
    if backend != "jax":
        raise ValueError(f"Unknown backend {backend!r}; choose 'jax' or 'pysr'.")
    rng = _rng_from_key(key)
    search_X, search_y, search_names, penalty_fn, reduction = X, y, names, None, None
    if units is not None:
        D = units_matrix(units, X.shape[1])
        out = None if output_units is None else parse_units(output_units)
        if dimensional_analysis is None:
            dimensional_analysis = "penalty" if out is None else "pi"
        if dimensional_analysis == "pi":
            if out is None:
                raise ValueError(
                    "dimensional_analysis='pi' needs `output_units` (the units of y); give "
                    "them, or use dimensional_analysis='penalty'."
                )
            reduction = buckingham_pi(D, out)
            search_X, search_y = reduction.transform(X, y)
            search_names = tuple(f"pi{j}" for j in range(search_X.shape[1]))
            (search_X, search_y, weights), _ = drop_nonfinite(
                search_X, search_y, weights, context=" after the dimensionless transform"
            )
            search_X, search_y, weights = (np.asarray(a) for a in (search_X, search_y, weights))
        elif dimensional_analysis == "penalty":
            penalty_fn = dimension_penalty_fn(D, out, operators, penalty=3.0)
        else:
            raise ValueError(
                f"Unknown dimensional_analysis {dimensional_analysis!r}; choose 'pi' or "
                f"'penalty'."
            )
    elif output_units is not None:
        raise ValueError("`output_units` was given without `units` for the inputs.")
    if reduction is not None and len(reduction.groups) == 0:
        # no dimensionless group: y = c * prefactor, and c is the weighted mean ratio
        c = float(np.sum(weights * search_y) / np.sum(weights))
        loss = float(np.sum(weights * (search_y - c) ** 2) / np.sum(weights))
        hof = [(((CONST, c),), loss, 1)]
        stats = {"num_evals": 1, "num_iterations": 0, "wall_time": 0.0, "stopped": "exact",
                 "history": np.asarray([loss])}
    else:
        hof, stats = run_search(
            rng, search_X, search_y, weights, operators, search_names, config,
            time_budget=time_budget, max_evals=max_evals, max_iterations=max_iterations,
            exact_tol=exact_tol, progress=progress, penalty_fn=penalty_fn,
        )
    result_ops = operators
    hof = _snap_constants(hof, search_X, search_y, weights, operators)
    if reduction is not None:
        # losses are recomputed on the original data, where the prefactor rescales them
        expanded = []
        for t, _, _ in hof:
            t2, result_ops = reduction.expand(t, operators)
            expanded.append(t2)
        hof = _rescore(expanded, X, y, weights, result_ops)
    baseline = float(np.average((y - np.average(y, weights=weights)) ** 2, weights=weights))
    return make_result(hof, stats, result_ops, names, config, selection, start, baseline)


def _snap_constants(hof, X, y, w, operators, max_denominator: int = 12):
    """Round each hall-of-fame expression's constants to simple fractions (denominators up to
    ``max_denominator``) when the loss allows it; noise leaves fitted constants slightly off
    values such as 1 or 1/2 (AI Feynman likewise tries rational snapping).

    Fixing ``k`` fitted constants of a correct model raises its mean squared error by a
    factor of about ``1 + k / n`` on ``n`` noisy rows, so an increase below ``3 k / n``
    (relative) is accepted."""
    from fractions import Fraction

    out = []
    for t, loss, c in hof:
        if not np.isfinite(loss) or not any(cc == CONST for cc, _ in t):
            out.append((t, loss, c))
            continue
        snapped = tuple(
            (cc, float(Fraction(v).limit_denominator(max_denominator))) if cc == CONST else (cc, v)
            for cc, v in t
        )
        if snapped == t:
            out.append((t, loss, c))
            continue
        new_loss = _rescore([snapped], X, y, w, operators)[0][1]
        k = sum(1 for cc, _ in t if cc == CONST)
        rel_tol = max(1e-3, 3.0 * k / len(y))
        scale = float(np.average(y**2, weights=w))
        if new_loss <= loss * (1 + rel_tol) + 1e-12 * scale:
            g = Grammar(operators, X.shape[1])
            simpler = simplify_identities(simplify_identities(snapped, g), g)
            out.append((simpler, new_loss, complexity(simpler, operators.complexity_table())))
        else:
            out.append((t, loss, c))
    return out


def _rescore(trees, X, y, w, operators):
    table = operators.complexity_table()
    out = []
    for t in trees:
        f = to_callable(t, operators)
        with np.errstate(all="ignore"):
            pred = np.asarray(f(jnp.asarray(X, jnp.float32)), np.float64)
        loss = float(np.sum(w * (pred - y) ** 2) / np.sum(w))
        out.append((t, loss if np.isfinite(loss) else np.inf, complexity(t, table)))
    return out


def make_result(
    hof, stats, operators, names, config, selection, start, baseline_loss=None
) -> SymbolicFit:
    longest = max([config.max_size + 1] + [len(t) + 1 for t, _, _ in hof])
    capacity = 1 << int(np.ceil(np.log2(longest)))
    slots = max([config.num_constants] + [num_constants(t) for t, _, _ in hof])
    front = hall_to_front(hof, operators, names, capacity, slots, baseline_loss)
    if not front:
        raise RuntimeError(
            "The search found no expression with a finite loss. Check that the data are "
            "finite and try a larger budget or different operators."
        )
    stats = dict(stats, wall_time=time.perf_counter() - start)
    return SymbolicFit(
        best=select(front, selection).expression,
        pareto=front,
        selection=selection,
        variable_names=tuple(names),
        **stats,
    )


def check_budget(time_budget, max_evals, max_iterations) -> None:
    if time_budget is None and max_evals is None and max_iterations is None:
        raise ValueError(
            "The search needs a budget: pass `time_budget` (seconds), `max_evals` or "
            "`max_iterations`."
        )
    for name, v in (("time_budget", time_budget), ("max_evals", max_evals),
                    ("max_iterations", max_iterations)):
        if v is not None and not v > 0:
            raise ValueError(
                f"`{name}` must be positive, got {v!r}; a search with no budget cannot run. "
                f"Pass e.g. `{name}=` a positive number, or None to leave it unlimited."
            )


def prepare_data(X, y, weights, variable_names):
    """Validated float64 NumPy copies of the data; rows with NaN/inf dropped with a warning."""
    from .._checks import as_2d

    X = as_2d(X, "X")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"`y` must be 1-D (one target per row of X), got shape {y.shape}. Fit one output "
            f"at a time."
        )
    check_same_length(X=X, y=y)
    if weights is None:
        weights = np.ones(len(y))
    weights = np.asarray(weights, np.float64)
    if weights.shape != y.shape:
        raise ValueError(f"`weights` must have shape {y.shape} like `y`, got {weights.shape}.")
    if np.any(weights < 0) or not np.any(weights > 0):
        raise ValueError("`weights` must be non-negative with at least one positive weight.")
    (X, y, weights), _ = drop_nonfinite(X, y, weights, context=" of the symbolic-regression data")
    X = np.asarray(X, np.float64)
    d = X.shape[1]
    if variable_names is None:
        names = tuple(f"x{i}" for i in range(d))
    else:
        names = tuple(str(n) for n in variable_names)
        if len(names) != d:
            raise ValueError(
                f"`variable_names` has {len(names)} names but X has {d} columns."
            )
    return X, np.asarray(y, np.float64), np.asarray(weights, np.float64), names


__all__ = ["fit"]
