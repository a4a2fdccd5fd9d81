"""Exact sequential design on a grid of parameter values, for low-dimensional parameters."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..simulators import AbstractSimulator
from .base import check_likelihood, one_experiment_design
from .constraints import AbstractConstraint, Box, declared_constraint

# The likelihood table holds (outcomes x grid points x candidates) numbers; above this many
# (4 GiB in float32 with its companion table) the grid or the candidate set must shrink.
_MAX_TABLE = 2**29


def _cell_log_widths(axis: np.ndarray) -> np.ndarray:
    """Log width of each point's cell (midpoints between neighbours; the end cells mirror)."""
    if axis.size == 1:
        return np.zeros(1)
    mid = 0.5 * (axis[1:] + axis[:-1])
    left = np.concatenate([[axis[0] - (mid[0] - axis[0])], mid])
    right = np.concatenate([mid, [axis[-1] + (axis[-1] - mid[-1])]])
    return np.log(right - left)


def _entropy_terms(p: Array) -> Array:
    """``p log p`` with ``0 log 0 = 0``."""
    return jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)


class GridDesigner(eqx.Module):
    """Greedy sequential design with the exact posterior on a grid of parameter values.

    For a simulator with a tractable likelihood, a parameter of one to three dimensions and
    outcomes with finitely many values (choices, counts), the posterior after any history is
    computed exactly on a tensor grid, and the next design is the candidate with the largest
    one-step EIG under that posterior, computed exactly by summing over the outcomes:

        EIG(d) = sum_x sum_g w_g p(x | theta_g, d) log p(x | theta_g, d) - sum_x m(x) log m(x),
        m(x) = sum_g w_g p(x | theta_g, d).

    It has the interface of a :class:`DesignPolicy` (``designer(designs, outcomes, mask)``
    gives the next design, ``rollout`` runs an episode), so :func:`evaluate_policy` bounds
    its total EIG and :func:`imitate_policy` teaches a network to design like it. Build it with
    :func:`grid_designer`.

    Fields:
        simulator: the model whose likelihood updates the grid.
        points: the grid, shape ``(G, theta_dim)``; log_prior: normalized log prior mass of
            each point's cell.
        candidates: the designs searched, ``(C, *design_shape)``; outcomes: every value one
            experiment's outcome can take, ``(X, *x_shape)``.
        probs: ``p(x | theta_g, d_c)``, shape ``(X, G, C)``; neg_entropy: ``sum_x p log p``,
            shape ``(G, C)``.
    """

    simulator: AbstractSimulator
    points: Float[Array, "G d"]
    log_prior: Float[Array, " G"]
    candidates: Float[Array, " C *design"]
    outcomes: Float[Array, " X *x"]
    probs: Float[Array, "X G C"]
    neg_entropy: Float[Array, "G C"]
    design_shape: tuple[int, ...] = eqx.field(static=True)
    x_shape: tuple[int, ...] = eqx.field(static=True)

    def log_likelihoods(self, design: Array, x: Array) -> Float[Array, " G"]:
        """``log p(x | theta_g, design)`` at every grid point."""
        return jax.vmap(lambda t: self.simulator.log_likelihood(t, x, design))(self.points)

    def update(self, log_w: Float[Array, " G"], design: Array, x: Array) -> Float[Array, " G"]:
        """Bayes' rule on the grid: the normalized log posterior after observing ``x`` at ``design``."""
        log_w = log_w + self.log_likelihoods(design, x)
        return log_w - jax.nn.logsumexp(log_w)

    def posterior(
        self, designs: Float[Array, " T *design"], outcomes: Float[Array, " T *x"], mask: Array
    ) -> Float[Array, " G"]:
        """Normalized log posterior weights of the grid points after the experiments with ``mask = 1``."""
        ll = jax.vmap(self.log_likelihoods)(designs, outcomes)
        log_w = self.log_prior + jnp.sum(ll * jnp.asarray(mask)[:, None], axis=0)
        return log_w - jax.nn.logsumexp(log_w)

    def eig(self, log_w: Float[Array, " G"]) -> Float[Array, " C"]:
        """Exact one-step EIG of every candidate under the grid posterior ``log_w``."""
        w = jnp.exp(log_w)
        marginal = jnp.einsum("g,xgc->xc", w, self.probs)
        return w @ self.neg_entropy - jnp.sum(_entropy_terms(marginal), axis=0)

    def next_design(self, log_w: Float[Array, " G"]) -> Float[Array, "*design"]:
        """The candidate with the largest one-step EIG under ``log_w``."""
        return self.candidates[jnp.argmax(self.eig(log_w))]

    def __call__(
        self, designs: Float[Array, " T *design"], outcomes: Float[Array, " T *x"], mask: Array
    ) -> Float[Array, "*design"]:
        """The next design given the experiments ``designs[t], outcomes[t]`` with ``mask[t] = 1``."""
        return self.next_design(self.posterior(designs, outcomes, mask))

    def prefix_designs(
        self, designs: Float[Array, " T *design"], outcomes: Float[Array, " T *x"]
    ) -> Float[Array, " T *design"]:
        """The design this designer chooses after each prefix ``h_0, ..., h_{T-1}`` of a history."""

        def step(log_w, dx):
            design, x = dx
            return self.update(log_w, design, x), self.next_design(log_w)

        _, chosen = jax.lax.scan(step, self.log_prior, (designs, outcomes))
        return chosen

    def rollout(
        self,
        key: PRNGKeyArray,
        simulator: AbstractSimulator,
        theta: Float[Array, " d"],
        num_experiments: int,
        *,
        detach_outcomes: bool = False,
    ) -> tuple[Float[Array, " T *design"], Float[Array, " T *x"]]:
        """Run ``num_experiments`` experiments at ``theta``, each chosen greedily from the posterior."""
        dtype = jnp.result_type(float)

        def step(log_w, k):
            design = self.next_design(log_w)
            x = jax.lax.stop_gradient(simulator(k, theta, design).astype(dtype))
            return self.update(log_w, design, x), (design, x)

        keys = jax.random.split(key, num_experiments)
        _, (designs, outcomes) = jax.lax.scan(step, self.log_prior, keys)
        del detach_outcomes  # designs come from an argmax: outcomes never carry gradients
        return designs, outcomes


def candidate_grid(constraint: AbstractConstraint, design0: Array, num: int | Sequence[int]) -> Array:
    """Evenly spaced designs filling a :class:`Box` (log-spaced on its log-scale coordinates).

    ``num`` points per design coordinate (one number, or one per coordinate); the result has
    shape ``(prod(num), *design0.shape)``. The ends stay half a spacing inside the bounds.
    """
    if not isinstance(constraint, Box):
        raise TypeError(
            f"Default candidates need a Box constraint on the design, got "
            f"{constraint.describe()}. Pass `candidates=` (an array of designs, shape "
            f"(C, *design_shape))."
        )
    design0 = jnp.asarray(design0, float)
    size = design0.size
    nums = [num] * size if isinstance(num, int) else list(num)
    if len(nums) != size or any(int(n) < 1 for n in nums):
        raise ValueError(
            f"`num_candidates` must be a positive integer or one per design coordinate "
            f"({size}), got {num!r}."
        )
    low = np.broadcast_to(np.asarray(constraint.low, float), design0.shape).ravel()
    high = np.broadcast_to(np.asarray(constraint.high, float), design0.shape).ravel()
    logs = (
        np.zeros(size, bool)
        if constraint.log_scale is None
        else np.broadcast_to(np.asarray(constraint.log_scale), design0.shape).ravel()
    )
    axes = []
    for lo, hi, lg, n in zip(low, high, logs, nums):
        a, b = (math.log(lo), math.log(hi)) if lg else (lo, hi)
        ticks = a + (b - a) * (np.arange(n) + 0.5) / n
        axes.append(np.exp(ticks) if lg else ticks)
    mesh = np.meshgrid(*axes, indexing="ij")
    flat = np.stack([m.ravel() for m in mesh], axis=-1)
    return jnp.asarray(flat.reshape((-1,) + design0.shape), float)


def grid_designer(
    simulator: AbstractSimulator,
    axes: Sequence[Any],
    *,
    outcomes: Any,
    candidates: Any = None,
    num_candidates: int | Sequence[int] = 32,
    design0: Any = None,
    constraint: AbstractConstraint | None = None,
) -> GridDesigner:
    """A :class:`GridDesigner`: exact greedy sequential design on a parameter grid.

    Args:
        simulator: a simulator with ``log_likelihood``, called with the design of ONE
            experiment.
        axes: one 1-D array of values per parameter dimension; the grid is their tensor
            product (keep it to ~10^4-10^5 points). Each point carries the prior mass of its
            cell, so the spacing may be uneven (e.g. logarithmic), and the axes must cover
            the prior's bulk: mass outside them is lost.
        outcomes: every value one experiment's outcome can take, shape ``(X, *x_shape)``
            (e.g. ``[0., 1.]`` for a choice, ``arange(N + 1)`` for a count out of ``N``).
        candidates: the designs to choose from, shape ``(C, *design_shape)``; default a grid
            of ``num_candidates`` points per coordinate over the simulator's ``design_bounds()``
            (log-spaced on its log-scale coordinates).
        design0: one experiment's design, for its shape (default: the first experiment of the
            simulator's default design).
        constraint: the design's constraint for the default candidates (default: the
            simulator's declared box).

    Raises:
        ValueError: if the grid misses the prior, the outcomes do not cover the outcome
            distribution, or the likelihood table would be too large.

    Example:
        ```python
        sim = jg.simulators.HyperbolicDiscounting()
        designer = jg.boed.grid_designer(
            sim, [jnp.linspace(-13.25, 4.75, 160), jnp.linspace(0.06, 9.94, 80)],
            outcomes=jnp.array([0.0, 1.0]), num_candidates=(50, 80))
        bounds = jg.boed.evaluate_policy(key, sim, designer, 20)
        ```
    """
    check_likelihood(simulator, "grid_designer")
    theta_dim = simulator.theta_dim
    if len(axes) != theta_dim:
        raise ValueError(
            f"`axes` needs one 1-D array per parameter dimension ({theta_dim} for "
            f"{type(simulator).__name__}), got {len(axes)}."
        )
    np_axes = []
    for i, a in enumerate(axes):
        a = np.asarray(a, float)
        if a.ndim != 1 or a.size < 1 or not np.all(np.isfinite(a)):
            raise ValueError(f"`axes[{i}]` must be a finite 1-D array, got shape {a.shape}.")
        if a.size > 1 and not np.all(np.diff(a) > 0):
            raise ValueError(f"`axes[{i}]` must be strictly increasing.")
        np_axes.append(a)
    mesh = np.meshgrid(*np_axes, indexing="ij")
    points = jnp.asarray(np.stack([m.ravel() for m in mesh], axis=-1), float)
    widths = np.meshgrid(*[_cell_log_widths(a) for a in np_axes], indexing="ij")
    log_cell = jnp.asarray(sum(w.ravel() for w in widths), float)
    log_prior = jax.vmap(simulator.prior.log_prob)(points) + log_cell
    if not bool(jnp.any(jnp.isfinite(log_prior))):
        raise ValueError(
            "The prior has no mass on the grid: every grid point has log density -inf. Choose "
            "`axes` inside the prior's support."
        )
    log_prior = jnp.where(jnp.isfinite(log_prior), log_prior, -jnp.inf)
    log_prior = log_prior - jax.nn.logsumexp(log_prior)

    design0 = one_experiment_design(simulator, design0)
    if candidates is None:
        if constraint is None:
            constraint = declared_constraint(simulator)
        if constraint is None:
            raise ValueError(
                f"{type(simulator).__name__} declares no design_bounds(); pass `candidates=` "
                f"(an array of designs, shape (C, *design_shape))."
            )
        candidates = candidate_grid(constraint, design0, num_candidates)
    candidates = jnp.asarray(candidates, float)
    if candidates.shape[1:] != design0.shape:
        raise ValueError(
            f"`candidates` must have shape (C, *design_shape) = (C, *{design0.shape}), got "
            f"{candidates.shape}."
        )
    outcomes = jnp.asarray(outcomes, float)
    if outcomes.ndim == 0 or outcomes.shape[0] < 2:
        raise ValueError(
            f"`outcomes` lists every value one experiment's outcome can take, at least two, "
            f"along its first axis; got shape {outcomes.shape}."
        )
    size = outcomes.shape[0] * points.shape[0] * candidates.shape[0]
    if size > _MAX_TABLE:
        raise ValueError(
            f"The likelihood table would hold {outcomes.shape[0]} outcomes x "
            f"{points.shape[0]} grid points x {candidates.shape[0]} candidates = {size:,} "
            f"numbers (at most {_MAX_TABLE:,}); use fewer grid points or candidates."
        )

    def table(x):
        return jax.vmap(
            lambda t: jax.vmap(lambda d: simulator.log_likelihood(t, x, d))(candidates)
        )(points)

    probs = jnp.exp(jax.lax.map(table, outcomes))  # (X, G, C)
    mass = jnp.sum(probs, axis=0)
    covered = float(jnp.min(jnp.where(jnp.isfinite(log_prior)[:, None], mass, 1.0)))
    if not covered > 0.999:
        raise ValueError(
            f"`outcomes` does not cover the outcome distribution: at some grid point and "
            f"candidate its values carry only {covered:.4f} of the probability. List every "
            f"value an experiment's outcome can take."
        )
    neg_entropy = jnp.sum(_entropy_terms(probs), axis=0)
    x_shape = jax.eval_shape(simulator, jax.random.key(0), points[0], candidates[0]).shape
    return GridDesigner(
        simulator=simulator,
        points=points,
        log_prior=log_prior,
        candidates=candidates,
        outcomes=outcomes,
        probs=probs,
        neg_entropy=neg_entropy,
        design_shape=tuple(design0.shape),
        x_shape=tuple(x_shape),
    )

