"""AI Feynman's reductions with a neural surrogate: separability tests, split and recurse.

Udrescu & Tegmark (2020, "AI Feynman: a physics-inspired method for symbolic regression", Sci.
Adv. 6, eaay2631) fit a neural network to the data and query it to test whether the function
splits: additively, ``f(a, b) = g(a) + h(b)``, or multiplicatively, ``f(a, b) = g(a) h(b)``.
If it does, each part is a problem in fewer variables, fitted (recursively) on its own, and the
parts are combined. They also test symmetries: ``f`` unchanged when two inputs are shifted by
the same amount (it depends on their difference) or scaled by the same factor (on their ratio).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import as_2d, check_key, check_same_length
from ..nn import MLP
from ..train import fit as train_fit
from .expression import Expression
from .fitting import fit
from .operators import CONST, OperatorSet


class Surrogate:
    """A trained MLP on standardized inputs and outputs: ``f(X) -> y`` for a batch."""

    def __init__(self, mlp, x_mean, x_std, y_mean, y_std):
        self.mlp, self.x_mean, self.x_std = mlp, x_mean, x_std
        self.y_mean, self.y_std = y_mean, y_std

    def __call__(self, X: Float[Array, "n d"]) -> Float[Array, " n"]:
        Z = (jnp.asarray(X, jnp.float32) - self.x_mean) / self.x_std
        return jax.vmap(self.mlp)(Z)[:, 0] * self.y_std + self.y_mean


def fit_surrogate(
    key: PRNGKeyArray,
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    *,
    width: int = 64,
    depth: int = 3,
    max_epochs: int = 300,
) -> Surrogate:
    """Fit an MLP to ``y ~ f(X)`` with the project's training loop (early stopping)."""
    key = check_key(key)
    X = as_2d(X, "X")
    y = jnp.asarray(y, jnp.float32).reshape(-1)
    check_same_length(X=X, y=y)
    k_init, k_fit = jax.random.split(key)
    xm, xs = X.mean(0), X.std(0) + 1e-8
    ym, ys = y.mean(), y.std() + 1e-8
    mlp = MLP(X.shape[1], 1, width_size=width, depth=depth, activation=jax.nn.softplus,
              key=k_init)

    def loss_fn(model, batch, key):
        x, t = batch
        return jnp.mean((jax.vmap(model)((x - xm) / xs)[:, 0] - (t - ym) / ys) ** 2)

    mlp, _ = train_fit(k_fit, mlp, loss_fn, (X, y), max_epochs=max_epochs, batch_size=64,
                       learning_rate=3e-3, patience=30)
    return Surrogate(mlp, xm, xs, ym, ys)


def separability_error(
    f: Callable[[Array], Array], X: Float[Array, "n d"], group: Sequence[int], kind: str
) -> float:
    """How far ``f`` is from splitting into a function of ``group`` and one of the rest.

    Fixes the rest (for ``g``) or the group (for ``h``) at the median point ``x0`` and compares
    ``f(x)`` with ``f(a, b0) + f(a0, b) - f(a0, b0)`` (``kind="additive"``) or
    ``f(a, b0) f(a0, b) / f(a0, b0)`` (``"multiplicative"``). Returns the RMS difference over
    the RMS of ``f`` (0 for an exactly separable function).
    """
    X = jnp.asarray(X, jnp.float32)
    x0 = jnp.median(X, axis=0)
    mask = jnp.zeros(X.shape[1], bool).at[jnp.asarray(list(group))].set(True)
    a_only = jnp.where(mask, X, x0)  # group varies, the rest fixed
    b_only = jnp.where(mask, x0, X)
    fx, fa, fb, f0 = f(X), f(a_only), f(b_only), f(x0[None])[0]
    if kind == "additive":
        pred = fa + fb - f0
    elif kind == "multiplicative":
        pred = fa * fb / f0
    else:
        raise ValueError(f"kind must be 'additive' or 'multiplicative', got {kind!r}.")
    return float(jnp.sqrt(jnp.mean((fx - pred) ** 2)) / (jnp.sqrt(jnp.mean(fx**2)) + 1e-12))


def symmetry_error(
    f: Callable[[Array], Array], X: Float[Array, "n d"], i: int, j: int, kind: str
) -> float:
    """Change of ``f`` when inputs ``i`` and ``j`` are shifted by the same amount
    (``kind="translation"``: ``f`` depends on ``x_i - x_j``) or scaled by the same factor
    (``"scaling"``: on ``x_i / x_j``); relative RMS, 0 for an exact symmetry."""
    X = jnp.asarray(X, jnp.float32)
    fx = f(X)
    if kind == "translation":
        delta = 0.5 * jnp.std(X[:, [i, j]])
        Y = X.at[:, i].add(delta).at[:, j].add(delta)
    elif kind == "scaling":
        Y = X.at[:, i].multiply(1.1).at[:, j].multiply(1.1)
    else:
        raise ValueError(f"kind must be 'translation' or 'scaling', got {kind!r}.")
    return float(jnp.sqrt(jnp.mean((f(Y) - fx) ** 2)) / (jnp.sqrt(jnp.mean(fx**2)) + 1e-12))


@dataclasses.dataclass(frozen=True)
class Separation:
    """A split of the inputs: ``group`` and the rest, combined by ``kind``."""

    group: tuple[int, ...]
    kind: str
    error: float


def find_separation(
    f: Callable[[Array], Array], X: Float[Array, "n d"], tol: float = 1e-2
) -> Separation | None:
    """The most separable split of the inputs (error below ``tol``), or ``None``.

    Tries every group of up to ``d // 2`` inputs against the rest, both kinds.
    """
    d = X.shape[1]
    best = None
    for size in range(1, d // 2 + 1):
        for group in itertools.combinations(range(d), size):
            for kind in ("multiplicative", "additive"):
                err = separability_error(f, X, group, kind)
                if err < tol and (best is None or err < best.error):
                    best = Separation(tuple(group), kind, err)
    return best


def fit_separable(
    key: PRNGKeyArray,
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    *,
    variable_names: Sequence[str] | None = None,
    tol: float = 1e-2,
    max_depth: int = 2,
    surrogate: Surrogate | None = None,
    **fit_kwargs,
) -> Expression:
    """Fit ``y ~ f(X)`` by splitting ``f`` where a surrogate network says it separates.

    Trains (or takes) a surrogate, looks for a separable split (:func:`find_separation`); if
    one is found, fits each part on data generated by the surrogate with the other inputs held
    at their median, recursing up to ``max_depth``; otherwise runs :func:`fit` on the data.
    The parts are joined with ``+``/``*`` and a constant for the double-counted ``f(x0)``.

    Returns:
        The combined :class:`Expression` over all inputs.

    Example:
        ```python
        e = fit_separable(key, X, y, time_budget=20.0)
        ```
    """
    key = check_key(key)
    X = np.asarray(as_2d(X, "X"), np.float64)
    y = np.asarray(y, np.float64).reshape(-1)
    d = X.shape[1]
    names = tuple(variable_names) if variable_names is not None else tuple(
        f"x{i}" for i in range(d))
    k_sur, k_a, k_b, k_fit = jax.random.split(key, 4)
    if d < 2 or max_depth == 0:
        return fit(k_fit, X, y, variable_names=names, **fit_kwargs).best
    f = surrogate if surrogate is not None else fit_surrogate(k_sur, X, y)
    sep = find_separation(f, X, tol)
    if sep is None:
        return fit(k_fit, X, y, variable_names=names, **fit_kwargs).best
    group = list(sep.group)
    rest = [i for i in range(d) if i not in group]
    x0 = np.median(X, axis=0)
    Xa = np.where(np.isin(np.arange(d), group), X, x0)
    Xb = np.where(np.isin(np.arange(d), group), x0, X)
    ya, yb = np.asarray(f(Xa), np.float64), np.asarray(f(Xb), np.float64)
    f0 = float(f(x0[None])[0])
    sub = dict(tol=tol, max_depth=max_depth - 1, **fit_kwargs)
    ea = fit_separable(k_a, X[:, group], ya, variable_names=[names[i] for i in group], **sub)
    eb = fit_separable(k_b, X[:, rest], yb, variable_names=[names[i] for i in rest], **sub)
    return _combine(ea, group, eb, rest, sep.kind, f0, names)


def _combine(ea: Expression, ga, eb: Expression, gb, kind: str, f0: float, names):
    """Join two expressions over disjoint inputs into one over all of them."""
    from .tree import VAR

    ops = ea.operators
    extra = [n for n in ("+", "*", "-", "/") if n not in {o.name for o in ops}]
    if extra:
        ops = OperatorSet(list(ops) + extra)

    def remap(e: Expression, cols):
        return tuple((c, cols[int(v)]) if c == VAR else (c, v) for c, v in e.tree)

    ta, tb = remap(ea, ga), remap(eb, gb)
    if kind == "additive":
        tree = ((ops.code("-"), 0.0), (ops.code("+"), 0.0)) + ta + tb + ((CONST, f0),)
    else:
        tree = ((ops.code("/"), 0.0), (ops.code("*"), 0.0)) + ta + tb + ((CONST, f0),)
    capacity = 1 << int(np.ceil(np.log2(len(tree) + 1)))
    slots = max(8, sum(1 for c, _ in tree if c == CONST))
    return Expression.from_tree(tree, ops, names, capacity, slots)
