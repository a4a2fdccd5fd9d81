"""Constant optimization for a whole population at once: Levenberg-Marquardt.

Each expression's constants are fitted by damped Gauss-Newton steps (Levenberg 1944, Marquardt
1963). The Jacobian of the residuals with respect to the constants comes from forward-mode
derivatives through the grouped population evaluator (one tangent per constant slot, primal
computed once), so every expression of the population is optimized in the same jitted call,
each with its own damping. Steps that do not lower an expression's loss are rejected for that
expression only.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .evaluate import evaluate_population
from .operators import OperatorSet


def weighted_mse(pred: Float[Array, "p n"], y: Float[Array, " n"], w: Float[Array, " n"]):
    """Weighted mean squared error per expression; ``inf`` if any prediction is not finite."""
    r = pred - y
    loss = jnp.sum(w * r * r, axis=-1) / jnp.sum(w)
    ok = jnp.all(jnp.isfinite(pred), axis=-1) & jnp.isfinite(loss)
    return jnp.where(ok, loss, jnp.inf)


@eqx.filter_jit
def population_loss(
    code: Int[Array, "p L"],
    arg: Int[Array, "p L"],
    reg: Int[Array, "p L"],
    child: Int[Array, "p L 2"],
    constants: Float[Array, "p K"],
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    w: Float[Array, " n"],
    operators: OperatorSet,
) -> Float[Array, " p"]:
    """Weighted MSE of every expression of a population."""
    pred = evaluate_population(code, arg, reg, child, constants, X, operators)
    return weighted_mse(pred, y, w)


@eqx.filter_jit
def levenberg_marquardt(
    code: Int[Array, "p L"],
    arg: Int[Array, "p L"],
    reg: Int[Array, "p L"],
    child: Int[Array, "p L 2"],
    constants: Float[Array, "p K"],
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    w: Float[Array, " n"],
    operators: OperatorSet,
    num_steps: int = 10,
    num_slots: int | None = None,
) -> tuple[Float[Array, "p K"], Float[Array, " p"]]:
    """Fit the constants of every expression by Levenberg-Marquardt.

    Args:
        code, arg, reg, child, constants: population encoding and starting constants.
        X, y, w: data, targets and row weights.
        operators: the operator set.
        num_steps: Levenberg-Marquardt iterations.
        num_slots: only the first ``num_slots`` constant slots are optimized (the others hold
            zeros in every expression); fewer slots mean fewer tangents.

    Returns:
        ``(constants, loss)``: the optimized constants and each expression's weighted MSE.

    Example:
        ```python
        c, loss = levenberg_marquardt(*arrays, X, y, jnp.ones(len(y)), operators)
        ```
    """
    K = constants.shape[1] if num_slots is None else int(num_slots)
    wn = w / jnp.sum(w)

    def predict(c):
        return evaluate_population(code, arg, reg, child, c, X, operators)

    basis = jnp.eye(constants.shape[1], dtype=constants.dtype)[:K]

    def lin(c):
        def tangent(e):
            return jax.jvp(predict, (c,), (jnp.broadcast_to(e, c.shape),))

        pred, J = jax.vmap(tangent, out_axes=(None, 2))(basis)
        return pred, J  # (p, n), (p, n, K)

    def step(carry, _):
        c, loss, lam = carry
        pred, J = lin(c)
        r = pred - y
        Jw = J * wn[None, :, None]
        A = jnp.einsum("pnk,pnl->pkl", Jw, J)
        g = jnp.einsum("pnk,pn->pk", Jw, r)
        diag = jnp.diagonal(A, axis1=1, axis2=2)
        damp = lam[:, None] * (diag + 1e-9 * (1.0 + jnp.max(diag, axis=1, keepdims=True)))
        A = A + jax.vmap(jnp.diag)(damp + 1e-30)
        delta = jnp.linalg.solve(A, g[..., None])[..., 0]
        delta = jnp.where(jnp.isfinite(delta), delta, 0.0)
        c_new = c.at[:, :K].add(-delta)
        loss_new = weighted_mse(predict(c_new), y, w)
        better = loss_new < loss
        c = jnp.where(better[:, None], c_new, c)
        loss = jnp.where(better, loss_new, loss)
        lam = jnp.clip(jnp.where(better, lam / 3.0, lam * 4.0), 1e-9, 1e9)
        return (c, loss, lam), None

    loss0 = weighted_mse(predict(constants), y, w)
    lam0 = jnp.full(loss0.shape, 1e-3, constants.dtype)
    (c, loss, _), _ = jax.lax.scan(step, (constants, loss0, lam0), None, length=num_steps)
    return c, loss
