"""Evaluation of encoded expressions.

Two evaluators share the encoding of :mod:`jaxgen.symbolic.tree`:

* :func:`evaluate_expression` evaluates ONE expression; it is written for a single expression and
  can be vmapped, but under ``vmap`` every operator is computed for every node and then selected,
  which wastes most of the work on a population with many operators.
* :func:`evaluate_population` evaluates a whole population in one jitted call and groups the work
  by operator: at each postfix position the population is sorted by node code and each operator
  is applied only to fixed-size windows of the expressions that use it there (a ``lax.switch``
  per window). The cost per position is about one operator application per expression plus one
  window per operator present, instead of one per operator per expression. Positions where every
  expression is padding are skipped. Forward-mode derivatives (``jax.jvp``/``jax.jacfwd``) go
  through it, which is what the constant optimizer uses.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .operators import CONST, FIRST_OP, VAR, OperatorSet
from .tree import registers_needed


def _branches(operators: OperatorSet, XT: Array):
    """One branch per node code, all with the signature ``(a, b, arg, const) -> values``."""

    def pad(a, b, arg, c):
        return jnp.zeros_like(a)

    def var(a, b, arg, c):
        return jnp.take(XT, arg, axis=0)

    def const(a, b, arg, c):
        return jnp.broadcast_to(c[..., None], a.shape).astype(a.dtype)

    out = [pad, var, const]
    for op in operators:
        if op.arity == 1:
            out.append(lambda a, b, arg, c, f=op.fn: f(a).astype(a.dtype))
        else:
            out.append(lambda a, b, arg, c, f=op.fn: f(a, b).astype(a.dtype))
    return out


def evaluate_expression(
    code: Int[Array, " L"],
    arg: Int[Array, " L"],
    reg: Int[Array, " L"],
    child: Int[Array, "L 2"],
    constants: Float[Array, " K"],
    X: Float[Array, "n d"],
    operators: OperatorSet,
) -> Float[Array, " n"]:
    """Values of one encoded expression on the rows of ``X`` (a scan over its nodes).

    Args:
        code, arg, reg, child, constants: the encoding of one expression (see
            :mod:`jaxgen.symbolic.tree`).
        X: data, one row per example.
        operators: the operator set the codes refer to.

    Returns:
        ``(n,)`` values; NaN/inf where the expression is undefined.

    Example:
        ```python
        y = evaluate_expression(e.code, e.arg, e.reg, e.child, e.constants, X, e.operators)
        ```
    """
    X = jnp.asarray(X)
    n, L = X.shape[0], code.shape[0]
    branches = _branches(operators, X.T)
    dtype = jnp.result_type(X.dtype, constants.dtype)
    R = registers_needed(L)

    def step(V, i):
        a = V[child[i, 0]]
        b = V[child[i, 1]]
        v = jax.lax.switch(code[i], branches, a, b, arg[i], constants[arg[i]])
        # padding nodes write register 0 with zeros before the expression starts: harmless
        return V.at[reg[i]].set(v), None

    V, _ = jax.lax.scan(step, jnp.zeros((R, n), dtype), jnp.arange(L))
    return V[0]


def evaluate_population(
    code: Int[Array, "p L"],
    arg: Int[Array, "p L"],
    reg: Int[Array, "p L"],
    child: Int[Array, "p L 2"],
    constants: Float[Array, "p K"],
    X: Float[Array, "n d"],
    operators: OperatorSet,
    window: int = 32,
    num_parts: int = 2,
) -> Float[Array, "p n"]:
    """Values of every expression of a population on the rows of ``X``, grouped by operator.

    Args:
        code, arg, reg, child, constants: population encoding (leading axis ``p``).
        X: data ``(n, d)``.
        operators: the operator set.
        window: number of expressions one operator application handles at once. Smaller
            windows waste less work at the edges of each operator's group; larger ones cost fewer
            loop iterations.
        num_parts: the population is cut into this many independent parts, whose loops XLA
            can run concurrently on different cores.

    Returns:
        ``(p, n)`` values; NaN/inf where an expression is undefined (isolated to that
        expression).

    Example:
        ```python
        Y = jax.jit(evaluate_population, static_argnames=("operators",))(
            code, arg, reg, child, constants, X, operators)
        ```
    """
    p = code.shape[0]
    if num_parts > 1 and p >= 2 * num_parts:
        # Parts of similar length: each part's loop starts at its own longest expression, so
        # parts of short expressions skip most positions (and the parts run concurrently).
        order = jnp.argsort(jnp.sum(code != 0, axis=1), stable=True)
        code, arg, reg, child, constants = (
            jnp.take(a, order, axis=0) for a in (code, arg, reg, child, constants)
        )
        bounds = np.linspace(0, p, num_parts + 1).astype(int)
        parts = [
            _grouped(code[a:b], arg[a:b], reg[a:b], child[a:b], constants[a:b], X, operators,
                     window)
            for a, b in itertools.pairwise(bounds)
        ]
        out = jnp.concatenate(parts, axis=0)
        return jnp.zeros_like(out).at[order].set(out, unique_indices=True)
    return _grouped(code, arg, reg, child, constants, X, operators, window)


def _grouped(code, arg, reg, child, constants, X, operators: OperatorSet, window: int,
             row_tile: int = 512):
    X = jnp.asarray(X)
    p, L = code.shape
    n = X.shape[0]
    C = int(min(window, max(p, 1)))
    ncodes = operators.num_codes
    dtype = jnp.result_type(X.dtype, constants.dtype)
    max_windows = -(-p // C) + ncodes
    R = registers_needed(L)
    rows = jnp.arange(p, dtype=jnp.int32)

    # Slots of a window that belong to no expression read row 0 and are overwritten later.
    lengths = jnp.sum(code != 0, axis=1)
    first = L - jnp.max(lengths)

    def plan(o, reg_i):
        """Which operator each window applies, where it starts, and where results go."""
        perm = jnp.argsort(o, stable=True).astype(jnp.int32)
        counts = jnp.bincount(o, length=ncodes)
        starts = jnp.cumsum(counts) - counts
        counts = counts.at[0].set(0)  # padding nodes need no work
        nwin = (counts + C - 1) // C
        wend = jnp.cumsum(nwin)
        wstart = wend - nwin
        w = jnp.arange(max_windows)
        k = jnp.clip(jnp.searchsorted(wend, w, side="right"), 0, ncodes - 1)
        wpos = starts[k] + (w - wstart[k]) * C
        # padding rows go to a scratch register R so every index is unique and no live value
        # is touched
        dest = (jnp.where(o != 0, reg_i, R) * p + rows)[perm]
        return jnp.concatenate([perm, jnp.zeros((C,), jnp.int32)]), k, wpos, wend[-1], dest

    # The schedule depends on the codes only: computed once, shared by every tile of rows.
    perms, ks, wposs, nwins, dests = jax.vmap(plan, in_axes=(1, 1))(code, reg)

    def run_tile(XT):
        branches = _branches(operators, XT)
        t = XT.shape[1]

        def position(i, V):
            perm_pad, k, wpos, ch, ar = perms[i], ks[i], wposs[i], child[:, i], arg[:, i]

            # Windows run in sorted order and each writes a contiguous block of `out`; the tail
            # of a window that runs past its operator's group is overwritten by the next
            # group's window.
            def one_window(j, out):
                s = wpos[j]
                idx = jax.lax.dynamic_slice(perm_pad, (s,), (C,))
                a = jnp.take(V, ch[idx, 0] * p + idx, axis=0)
                b = jnp.take(V, ch[idx, 1] * p + idx, axis=0)
                c = constants[idx, ar[idx]]
                res = jax.lax.switch(k[j], branches, a, b, ar[idx], c)
                return jax.lax.dynamic_update_slice(out, res, (s, 0))

            out = jax.lax.fori_loop(0, nwins[i], one_window, jnp.zeros((p + C, t), dtype))
            return V.at[dests[i]].set(out[:p], unique_indices=True)

        V = jax.lax.fori_loop(first, L, position, jnp.zeros(((R + 1) * p, t), dtype))
        return V[:p]

    # Rows in tiles, so that the registers of the whole population for one tile stay in cache
    # while every position is evaluated (the work is bound by memory traffic, not arithmetic).
    T = int(min(row_tile, max(n, 1)))
    num_tiles = -(-n // T)
    XT = jnp.pad(X, ((0, num_tiles * T - n), (0, 0))).T.reshape(X.shape[1], num_tiles, T)
    out = jax.lax.map(run_tile, jnp.moveaxis(XT, 1, 0))  # (tiles, p, T)
    return jnp.moveaxis(out, 0, 1).reshape(p, num_tiles * T)[:, :n]


def naive_population(code, arg, reg, child, constants, X, operators: OperatorSet):
    """``vmap`` of :func:`evaluate_expression`: every operator computed, then selected.

    Kept as the reference the grouped evaluator is measured against.
    """
    return jax.vmap(evaluate_expression, in_axes=(0, 0, 0, 0, 0, None, None))(
        code, arg, reg, child, constants, X, operators
    )


__all__ = [
    "CONST",
    "FIRST_OP",
    "VAR",
    "evaluate_expression",
    "evaluate_population",
    "naive_population",
]
