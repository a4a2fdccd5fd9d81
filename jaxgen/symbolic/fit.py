"""``fit``: find the expression behind data."""

from __future__ import annotations

import time
from collections.abc import Sequence

import jax
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key, check_same_length, drop_nonfinite
from .operators import DEFAULT_OPERATORS, Operator, OperatorSet
from .search import SearchConfig, SymbolicFit, hall_to_front, run_search
from .selection import SELECTION_RULES, select


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
    hof, stats = run_search(
        rng, X, y, weights, operators, names, config, time_budget=time_budget,
        max_evals=max_evals, max_iterations=max_iterations, exact_tol=exact_tol,
        progress=progress,
    )
    return make_result(hof, stats, operators, names, config, selection, start)


def make_result(hof, stats, operators, names, config, selection, start) -> SymbolicFit:
    capacity = 1 << int(np.ceil(np.log2(max([config.max_size + 1] + [len(t) for t, _, _ in hof]))))
    front = hall_to_front(hof, operators, names, capacity, config.num_constants)
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
