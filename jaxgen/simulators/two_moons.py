"""The two-moons benchmark simulator."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ._utils import check_no_design, check_theta
from .base import AbstractSimulator

_RADIUS_MEAN = 0.1
_RADIUS_STD = 0.01
_CENTRE = 0.25


class TwoMoons(AbstractSimulator):
    """A crescent-shaped likelihood whose posterior has two moons (bimodal, curved).

    Model (sbibm task "two_moons", Lueckmann et al. 2021, *Benchmarking Simulation-Based
    Inference*, AISTATS; after Greenberg et al. 2019)::

        theta ~ U(-1, 1)^2,   a ~ U(-pi/2, pi/2),   r ~ N(0.1, 0.01^2)
        p = (r cos a + 0.25, r sin a)
        x = p + (-|theta_1 + theta_2| / sqrt 2, (-theta_1 + theta_2) / sqrt 2)

    The likelihood is exact: with ``u = x - shift(theta) - (0.25, 0)`` in polar coordinates
    ``(r, a)``, the density is ``N(r; 0.1, 0.01^2) / (pi r)`` for ``a`` in (-pi/2, pi/2) (the
    Jacobian of polar coordinates is ``r``) and zero elsewhere. Because the shift depends on
    ``|theta_1 + theta_2|``, the posterior is symmetric under ``theta -> (-theta_2, -theta_1)``.
    :meth:`reference_posterior_samples` draws exact posterior samples on a fine grid.

    Example:
        ```python
        sim = jg.simulators.TwoMoons()
        x_o = jnp.zeros(2)
        ref = sim.reference_posterior_samples(jax.random.key(1), x_o, 10_000)
        ```
    """

    prior: dist.Distribution

    def __init__(self):
        self.prior = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)

    @staticmethod
    def _shift(theta: Float[Array, " 2"]) -> Float[Array, " 2"]:
        return jnp.stack(
            [-jnp.abs(theta[0] + theta[1]) / math.sqrt(2.0), (theta[1] - theta[0]) / math.sqrt(2.0)]
        )

    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " 2"], design: Any = None
    ) -> Float[Array, " 2"]:
        """Simulate one ``x`` in R^2."""
        check_key(key)
        check_no_design(design, "TwoMoons")
        theta = check_theta(theta, 2, "TwoMoons")
        angle_key, radius_key = jax.random.split(key)
        angle = jax.random.uniform(
            angle_key, (), theta.dtype, minval=-math.pi / 2, maxval=math.pi / 2
        )
        radius = _RADIUS_MEAN + _RADIUS_STD * jax.random.normal(radius_key, (), theta.dtype)
        point = jnp.stack([radius * jnp.cos(angle) + _CENTRE, radius * jnp.sin(angle)])
        return point + self._shift(theta)

    def log_likelihood(
        self, theta: Float[Array, " 2"], x: Float[Array, " 2"], design: Any = None
    ) -> Float[Array, ""]:
        """Exact ``log p(x | theta)``; ``-inf`` outside the half-plane the moons live in."""
        check_no_design(design, "TwoMoons")
        theta = check_theta(theta, 2, "TwoMoons")
        u = jnp.asarray(x) - self._shift(theta) - jnp.array([_CENTRE, 0.0], theta.dtype)
        inside = u[0] > 0.0  # angle in (-pi/2, pi/2)
        radius = jnp.sqrt(jnp.sum(jnp.square(jnp.where(inside, u, 1.0))))
        log_p = (
            dist.Normal(_RADIUS_MEAN, _RADIUS_STD).log_prob(radius)
            - jnp.log(radius)
            - math.log(math.pi)
        )
        return jnp.where(inside, log_p, -jnp.inf)

    def reference_posterior_samples(
        self,
        key: PRNGKeyArray,
        x_o: Float[Array, " 2"],
        num_samples: int,
        *,
        grid_size: int = 2000,
    ) -> Float[Array, "num_samples 2"]:
        """Samples from the exact posterior ``p(theta | x_o)``, by gridding the prior box.

        The unnormalised posterior (uniform prior times the exact likelihood) is evaluated at the
        centres of a ``grid_size x grid_size`` grid over [-1, 1]^2, in rows of cells so memory
        stays ``O(grid_size^2)`` floats. A cell is drawn with probability proportional to its
        value and the sample is placed uniformly inside it. With the default 2000 x 2000 grid a
        cell is 0.001 wide, about a tenth of the posterior's thickness (0.01, the spread of the
        radius), so the discretisation is far below what a C2ST with 10^4 samples can see. The
        only visible trace: a sample jittered inside a cell cut by the support's edge (the moon
        tips) can land up to one cell outside the support, about 0.1% of the samples.

        Args:
            key: PRNG key.
            x_o: the observation, shape ``(2,)``.
            num_samples: number of samples.
            grid_size: cells per axis.

        Returns:
            Array ``(num_samples, 2)``.
        """
        check_key(key)
        x_o = jnp.asarray(x_o)
        if x_o.shape != (2,):
            raise ValueError(f"`x_o` must have shape (2,), got {x_o.shape}.")
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"`num_samples` must be a positive integer, got {num_samples!r}.")
        if isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 2:
            raise ValueError(f"`grid_size` must be an integer >= 2, got {grid_size!r}.")
        return _grid_samples(self, key, x_o, num_samples, grid_size)


@eqx.filter_jit
def _grid_samples(simulator: TwoMoons, key, x_o, num_samples: int, grid_size: int):
    dtype = jnp.result_type(float)
    width = 2.0 / grid_size
    centres = -1.0 + (jnp.arange(grid_size, dtype=dtype) + 0.5) * width

    def row(first):
        thetas = jnp.stack([jnp.full_like(centres, first), centres], axis=-1)
        return jax.vmap(simulator.log_likelihood, in_axes=(0, None))(thetas, x_o)

    log_w = jax.lax.map(row, centres, batch_size=min(grid_size, 64))
    log_w = eqx.error_if(
        log_w,
        ~jnp.any(jnp.isfinite(log_w)),
        "x_o has zero likelihood for every theta in the prior box: it cannot come from TwoMoons.",
    )
    weights = jnp.exp(log_w - jnp.max(log_w))
    # Two-level inverse-CDF sampling (row, then column within the row) keeps each cumulative sum
    # short, so float32 rounding does not distort the cell probabilities.
    row_cdf = jnp.cumsum(weights.sum(axis=1))
    col_cdf = jnp.cumsum(weights, axis=1)

    row_key, col_key, jitter_key = jax.random.split(key, 3)
    u_row = jax.random.uniform(row_key, (num_samples,), dtype) * row_cdf[-1]
    rows = jnp.minimum(jnp.searchsorted(row_cdf, u_row, side="right"), grid_size - 1)
    u_col = jax.random.uniform(col_key, (num_samples,), dtype) * col_cdf[rows, -1]
    cols = _search_in_rows(col_cdf, rows, u_col)
    jitter = jax.random.uniform(jitter_key, (num_samples, 2), dtype, minval=-0.5, maxval=0.5)
    return jnp.stack([centres[rows], centres[cols]], axis=-1) + jitter * width


def _search_in_rows(cdf, rows, targets):
    """For each sample, the first column ``j`` with ``cdf[row, j] > target`` (binary search).

    Indexing one entry per step avoids gathering a whole row per sample.
    """
    num_cols = cdf.shape[1]
    low = jnp.zeros_like(rows)
    high = jnp.full_like(rows, num_cols - 1)

    def step(_, bounds):
        low, high = bounds
        mid = (low + high) // 2
        active = low < high
        right = cdf[rows, mid] <= targets
        return (
            jnp.where(active & right, mid + 1, low),
            jnp.where(active & ~right, mid, high),
        )

    low, _ = jax.lax.fori_loop(0, max(num_cols - 1, 1).bit_length() + 1, step, (low, high))
    return low
