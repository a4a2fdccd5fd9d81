"""PySR as an optional backend of :func:`jaxgen.symbolic.fit` (``backend="pysr"``).

PySR (Cranmer 2023, arXiv:2305.01582) runs SymbolicRegression.jl through Julia. Importing it
installs Julia on first use, so jaxgen never imports it at import time: this module checks that
``pysr`` and ``juliacall`` are installed before importing them, and maps PySR's equations onto
the same :class:`~jaxgen.symbolic.SymbolicFit` result as the JAX engine.
"""

from __future__ import annotations

import importlib.util
import time

import jax
import numpy as np
import sympy

from .expression import Expression
from .search import SearchConfig, SymbolicFit
from .selection import pareto_front, select

# jaxgen operator name -> (PySR operator, arity); custom operators have no Julia counterpart.
_PYSR_NAMES = {
    "+": "+", "-": "-", "*": "*", "/": "/", "pow": "^", "neg": "neg", "sqrt": "sqrt",
    "exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tanh": "tanh", "abs": "abs",
    "square": "square", "cube": "cube", "inv": "inv",
}

INSTALL_HINT = (
    "backend='pysr' needs PySR and a working Julia: `pip install pysr` (or `pip install "
    "jaxgen[pysr]`), then run `python -c 'import pysr'` once with internet access so that it "
    "installs Julia and SymbolicRegression.jl. Without them, use the default backend='jax'."
)


def pysr_available() -> bool:
    """Whether ``pysr`` and ``juliacall`` are installed (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("pysr", "juliacall"))


def fit_pysr(
    key,
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    operators,
    names: tuple[str, ...],
    *,
    time_budget: float | None,
    max_evals: int | None,
    max_iterations: int | None,
    selection: str,
    config: SearchConfig,
) -> SymbolicFit:
    """Run ``pysr.PySRRegressor`` and return its hall of fame as a :class:`SymbolicFit`."""
    if not pysr_available():
        raise ImportError(INSTALL_HINT)
    unknown = [o.name for o in operators if o.name not in _PYSR_NAMES]
    if unknown:
        raise ValueError(
            f"The PySR backend cannot use the custom operators {unknown}: they are JAX "
            f"functions and PySR needs Julia definitions. Use backend='jax' for them."
        )
    try:
        from pysr import PySRRegressor
    except Exception as err:  # pysr's import installs/starts Julia and can fail in many ways
        raise ImportError(f"{INSTALL_HINT} Importing pysr failed with: {err}") from err

    start = time.perf_counter()
    seed = int(np.asarray(jax.random.key_data(key)).ravel()[-1]) % (2**31)
    model = PySRRegressor(
        binary_operators=[_PYSR_NAMES[o.name] for o in operators if o.arity == 2],
        unary_operators=[_PYSR_NAMES[o.name] for o in operators if o.arity == 1],
        niterations=max_iterations or 10**6,
        timeout_in_seconds=time_budget,
        max_evals=max_evals,
        maxsize=config.max_size,
        populations=config.num_islands,
        population_size=config.island_size,
        model_selection=selection,
        random_state=seed,
        deterministic=time_budget is None,
        parallelism="serial" if time_budget is None else "multithreading",
        progress=False,
        verbosity=0,
        temp_equation_file=True,
    )
    model.fit(X, y, weights=weights, variable_names=list(names))
    table = model.equations_
    cands = []
    for _, row in table.iterrows():
        expr = sympy.sympify(row["sympy_format"])
        try:
            e = Expression.from_sympy(expr, names, operators, capacity=64, num_constants=32)
        except ValueError:
            continue  # a form our operator set cannot encode (e.g. after SymPy rewriting)
        cands.append((e, float(row["loss"]), int(row["complexity"])))
    front = pareto_front(cands)
    if not front:
        raise RuntimeError("PySR returned no equation that could be encoded.")
    return SymbolicFit(
        best=select(front, selection).expression,
        pareto=front,
        selection=selection,
        num_evals=int(max_evals or 0),
        num_iterations=int(max_iterations or 0),
        wall_time=time.perf_counter() - start,
        stopped="pysr",
        history=np.asarray([]),
        variable_names=tuple(names),
    )
