"""Symbolic distillation: fit expressions to a trained network's internal functions.

Cranmer et al. 2020 ("Discovering symbolic models from deep learning with inductive biases",
NeurIPS) train a graph network whose edge function plays the role of a pairwise force, then
replace that learned function by a closed form found by symbolic regression. :func:`distill`
does the second step for any function; :func:`force_law_example` runs the whole recipe on an
N-body system with an inverse-square attraction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import as_2d, check_key
from ..nn import MLP
from .fitting import fit
from .search import SymbolicFit


def distill(
    key: PRNGKeyArray,
    fn: Callable[[Array], Array],
    inputs: Float[Array, "n d"],
    *,
    output_index: int | None = None,
    variable_names: Sequence[str] | None = None,
    **fit_kwargs,
) -> SymbolicFit:
    """Fit a closed-form expression to ``fn`` (for ONE input vector) on the given inputs.

    Args:
        key: PRNG key for the search.
        fn: the function to distill, e.g. a network's edge model ``phi(features) -> message``.
        inputs: points ``(n, d)`` at which to query ``fn`` (typically the inputs it saw in
            training, so the expression is fitted where the network is trustworthy).
        output_index: which output component to fit when ``fn`` returns a vector.
        variable_names: names of the input features.
        **fit_kwargs: passed to :func:`jaxgen.symbolic.fit` (``time_budget``, ``operators``...).

    Returns:
        The :class:`SymbolicFit` for the chosen output.

    Example:
        ```python
        result = distill(key, lambda f: edge_mlp(f), features, output_index=0, time_budget=30)
        result.best.sympy()
        ```
    """
    key = check_key(key)
    inputs = as_2d(inputs, "inputs")
    out = jax.vmap(fn)(inputs)
    if out.ndim == 2:
        if output_index is None:
            raise ValueError(
                f"`fn` returns vectors of size {out.shape[1]}; choose one component with "
                f"`output_index` (0..{out.shape[1] - 1}) and distill each separately."
            )
        out = out[:, output_index]
    elif out.ndim != 1:
        raise ValueError(f"`fn` must return a scalar or a vector, got shape {out.shape[1:]}.")
    return fit(key, np.asarray(inputs), np.asarray(out), variable_names=variable_names,
               **fit_kwargs)


def inverse_square_force(dx: Float[Array, " 2"]) -> Float[Array, " 2"]:
    """Force on a particle from one at displacement ``dx``: ``dx / |dx|^3`` (unit masses)."""
    r = jnp.sqrt(jnp.sum(dx**2))
    # a particle exerts no force on itself (dx = 0); keep that case finite, not 0/0
    return dx / jnp.where(r > 0, r, 1.0) ** 3


def particle_snapshots(key: PRNGKeyArray, num_snapshots: int, num_particles: int = 4,
                       min_distance: float = 0.5, box: float = 3.0):
    """Positions ``(s, p, 2)`` and accelerations of an N-body system under
    :func:`inverse_square_force`. Configurations with a pair closer than ``min_distance`` are
    redrawn (host-side rejection)."""
    pos = []
    k = key
    while len(pos) < num_snapshots:
        k, sub = jax.random.split(k)
        cand = np.asarray(jax.random.uniform(sub, (num_snapshots, num_particles, 2), maxval=box))
        d = np.linalg.norm(cand[:, :, None] - cand[:, None], axis=-1)
        d[:, np.arange(num_particles), np.arange(num_particles)] = np.inf
        pos.extend(cand[d.min(axis=(1, 2)) > min_distance])
    x = jnp.asarray(np.stack(pos[:num_snapshots]))
    return x, jax.vmap(lambda xs: _accelerations(inverse_square_force, xs))(x)


def _accelerations(edge_fn, xs):
    """Sum of the edge function over all ordered pairs ``j != i``."""
    p = xs.shape[0]
    dx = xs[None, :, :] - xs[:, None, :]  # dx[i, j] = x_j - x_i
    msgs = jax.vmap(jax.vmap(edge_fn))(dx)
    off_diagonal = ~jnp.eye(p, dtype=bool)
    # `where`, not a multiplication by a 0/1 mask: a non-finite self-message must not leak in
    return jnp.sum(jnp.where(off_diagonal[:, :, None], msgs, 0.0), axis=1)


class EdgeModel(eqx.Module):
    """Learned pairwise interaction: features ``(dx, dy, r)`` of a displacement -> 2-D message."""

    mlp: MLP

    def __init__(self, key: PRNGKeyArray, width: int = 64, depth: int = 2):
        self.mlp = MLP(3, 2, width_size=width, depth=depth, activation=jax.nn.softplus, key=key)

    def __call__(self, dx: Float[Array, " 2"]) -> Float[Array, " 2"]:
        r = jnp.sqrt(jnp.sum(dx**2) + 1e-12)
        return self.mlp(edge_features(dx, r))


def edge_features(dx, r):
    return jnp.stack([dx[0], dx[1], r])


def force_law_example(
    key: PRNGKeyArray,
    *,
    num_snapshots: int = 2000,
    num_steps: int = 3000,
    time_budget: float = 30.0,
    operators=("+", "-", "*", "/", "square", "cube", "sqrt"),
    **fit_kwargs,
):
    """Train an edge model on N-body accelerations, then distill its x-message.

    The network only sees positions and total accelerations; the message it learns for a pair
    is the pairwise force, and the symbolic fit of its x-component over the features
    ``(dx, dy, r)`` recovers ``dx / r^3``.

    Args:
        key: PRNG key (data, initialization, search).
        num_snapshots: N-body configurations (4 particles each) to train on.
        num_steps: Adam steps.
        time_budget: seconds for the symbolic search.
        operators: operators of the search.
        **fit_kwargs: passed to :func:`jaxgen.symbolic.fit`.

    Returns:
        ``(edge_model, fit_result, train_loss)``.

    Example:
        ```python
        model, result, loss = force_law_example(jax.random.key(0))
        result.best.sympy()        # dx/r**3 (up to a constant close to 1)
        ```
    """
    key = check_key(key)
    k_data, k_init, k_fit = jax.random.split(key, 3)
    x, acc = particle_snapshots(k_data, num_snapshots)
    # the inverse-square force spans orders of magnitude; fit in a scale-free way
    scale = jnp.std(acc)
    model = EdgeModel(k_init)
    opt = optax.adam(optax.cosine_decay_schedule(3e-3, num_steps))
    state = opt.init(eqx.filter(model, eqx.is_array))

    def loss_fn(m):
        pred = jax.vmap(lambda xs: _accelerations(m, xs))(x)
        return jnp.mean(((pred - acc) / scale) ** 2)

    @eqx.filter_jit
    def steps(m, s):
        def one(carry, _):
            m, s = carry
            loss, g = eqx.filter_value_and_grad(loss_fn)(m)
            upd, s = opt.update(g, s, eqx.filter(m, eqx.is_array))
            return (eqx.apply_updates(m, upd), s), loss

        (m, s), losses = jax.lax.scan(one, (m, s), None, length=100)
        return m, s, losses[-1]

    loss = jnp.inf
    for _ in range(max(1, num_steps // 100)):
        model, state, loss = steps(model, state)
    # query the learned message on the displacements seen in training
    dx = (x[:, None, :, :] - x[:, :, None, :]).reshape(-1, 2)
    keep = np.asarray(jnp.linalg.norm(dx, axis=1) > 0)
    dx = dx[keep][:1000]
    r = jnp.linalg.norm(dx, axis=1)
    feats = jnp.stack([dx[:, 0], dx[:, 1], r], axis=1)
    result = distill(
        k_fit, lambda f: model.mlp(f), feats, output_index=0,
        variable_names=["dx", "dy", "r"], time_budget=time_budget, operators=operators,
        **fit_kwargs,
    )
    return model, result, float(loss)
