"""Elementwise monotone maps whose parameters come from a conditioner network.

A transformer maps ONE scalar with a parameter vector of length ``num_params``; coupling and
autoregressive layers ``vmap`` it over dimensions. All-zero parameters give the identity map, so
a conditioner whose last layer starts at zero makes a flow start at the identity.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class AbstractTransformer(eqx.Module):
    """A scalar bijection ``y = tau(x; params)`` with ``params`` of length ``num_params``.

    Contract: ``params = zeros(num_params)`` is the identity.
    """

    @property
    @abc.abstractmethod
    def num_params(self) -> int:
        """Number of parameters needed per transformed dimension."""

    @abc.abstractmethod
    def transform_and_log_det(
        self, x: Float[Array, ""], params: Float[Array, " num_params"]
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """``tau(x)`` and ``log|tau'(x)|`` for one scalar."""

    @abc.abstractmethod
    def inverse_and_log_det(
        self, y: Float[Array, ""], params: Float[Array, " num_params"]
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """``tau^{-1}(y)`` and ``log|(tau^{-1})'(y)|`` for one scalar."""


def _inverse_softplus(y: float) -> float:
    return math.log(math.expm1(y))


class Affine(AbstractTransformer):
    """``y = scale * x + shift`` with ``scale = min_scale + softplus(raw + c)``.

    The softplus keeps the scale positive without the overflow of ``exp``, and the offset ``c``
    makes ``raw = 0`` give ``scale = 1`` (identity). ``min_scale`` keeps the map invertible in
    floating point. Parameters: ``(shift, raw)``. With coupling layers this is RealNVP (Dinh et
    al. 2017, "Density estimation using Real NVP"); with MADE conditioners it is MAF.

    Example:
        ```python
        flow = jg.flows.coupling_flow(key, 2, transformer=jg.flows.Affine())
        ```
    """

    min_scale: float = eqx.field(static=True, default=1e-4)

    @property
    def num_params(self) -> int:
        return 2

    def _scale(self, raw: Array) -> Array:
        return self.min_scale + jax.nn.softplus(raw + _inverse_softplus(1.0 - self.min_scale))

    def transform_and_log_det(self, x, params):
        shift, raw = params[0], params[1]
        scale = self._scale(raw)
        return x * scale + shift, jnp.log(scale)

    def inverse_and_log_det(self, y, params):
        shift, raw = params[0], params[1]
        scale = self._scale(raw)
        return (y - shift) / scale, -jnp.log(scale)


class RationalQuadraticSpline(AbstractTransformer):
    """Monotone rational-quadratic spline on ``[-interval, interval]``, identity outside.

    ``num_bins`` bins with learned widths, heights and knot derivatives (Durkan, Bekasov, Murray
    & Papamakarios 2019, "Neural Spline Flows"). The derivative at both ends is 1, so the map
    joins the identity tails smoothly; inputs outside the interval (e.g. ``x = 50``) pass through
    with log-det 0 and finite gradients. Parameters: ``num_bins`` width logits, ``num_bins``
    height logits and ``num_bins - 1`` interior derivative pre-activations (``3 * num_bins - 1``).

    Args:
        num_bins: number of spline bins.
        interval: half-width ``B`` of the spline's domain ``[-B, B]`` (same range for outputs).

    Example:
        ```python
        flow = jg.flows.coupling_flow(key, 2, transformer=jg.flows.RationalQuadraticSpline(8, 4.0))
        ```
    """

    num_bins: int = eqx.field(static=True, default=8)
    interval: float = eqx.field(static=True, default=5.0)
    min_bin_size: float = eqx.field(static=True, default=1e-3)
    min_derivative: float = eqx.field(static=True, default=1e-3)

    def __check_init__(self):
        if not isinstance(self.num_bins, int) or self.num_bins < 1:
            raise ValueError(f"`num_bins` must be a positive int, got {self.num_bins!r}.")
        if not self.interval > 0:
            raise ValueError(f"`interval` must be positive, got {self.interval!r}.")
        if self.min_bin_size * self.num_bins >= 1:
            raise ValueError(
                f"`min_bin_size * num_bins` must be < 1, got {self.min_bin_size} * "
                f"{self.num_bins}. Use fewer bins or a smaller minimum bin size."
            )

    @property
    def num_params(self) -> int:
        return 3 * self.num_bins - 1

    def _knots(self, params: Array) -> tuple[Array, Array, Array]:
        k, b = self.num_bins, self.interval

        def positions(logits):
            sizes = jax.nn.softmax(logits)
            sizes = self.min_bin_size + (1.0 - self.min_bin_size * k) * sizes
            inner = -b + 2.0 * b * jnp.cumsum(sizes)[:-1]
            # Endpoints are fixed exactly so the tails join the identity without a gap.
            return jnp.concatenate([jnp.array([-b]), inner, jnp.array([b])])

        xk = positions(params[:k])
        yk = positions(params[k : 2 * k])
        shift = _inverse_softplus(1.0 - self.min_derivative)
        inner_d = self.min_derivative + jax.nn.softplus(params[2 * k :] + shift)
        one = jnp.ones((1,), inner_d.dtype)
        derivs = jnp.concatenate([one, inner_d, one])
        return xk, yk, derivs

    def _bin(self, knots: Array, value: Array) -> Array:
        # A comparison against the interior knots: cheaper to compile than a searchsorted loop
        # for the handful of bins a spline has.
        return jnp.sum(value >= knots[1:-1]).astype(jnp.int32)

    def transform_and_log_det(self, x, params):
        xk, yk, derivs = self._knots(params)
        b = self.interval
        inside = (x > -b) & (x < b)
        # Evaluate on a clipped copy so the unused branch never produces inf/NaN gradients.
        xc = jnp.clip(x, -b, b)
        i = self._bin(xk, xc)
        x0, x1, y0, y1 = xk[i], xk[i + 1], yk[i], yk[i + 1]
        d0, d1 = derivs[i], derivs[i + 1]
        w, h = x1 - x0, y1 - y0
        s = h / w
        xi = jnp.clip((xc - x0) / w, 0.0, 1.0)
        t = xi * (1.0 - xi)
        den = s + (d0 + d1 - 2.0 * s) * t
        y = y0 + h * (s * xi**2 + d0 * t) / den
        grad = s**2 * (d1 * xi**2 + 2.0 * s * t + d0 * (1.0 - xi) ** 2) / den**2
        return jnp.where(inside, y, x), jnp.where(inside, jnp.log(grad), 0.0)

    def inverse_and_log_det(self, y, params):
        xk, yk, derivs = self._knots(params)
        b = self.interval
        inside = (y > -b) & (y < b)
        yc = jnp.clip(y, -b, b)
        i = self._bin(yk, yc)
        x0, x1, y0, y1 = xk[i], xk[i + 1], yk[i], yk[i + 1]
        d0, d1 = derivs[i], derivs[i + 1]
        w, h = x1 - x0, y1 - y0
        s = h / w
        dy = yc - y0
        c2 = d0 + d1 - 2.0 * s
        # Root of the quadratic a xi^2 + b xi + c = 0 in the numerically stable form 2c/(-b-sqrt).
        qa = h * (s - d0) + dy * c2
        qb = h * d0 - dy * c2
        qc = -s * dy
        disc = jnp.maximum(qb**2 - 4.0 * qa * qc, 0.0)
        xi = jnp.clip(2.0 * qc / (-qb - jnp.sqrt(disc)), 0.0, 1.0)
        x = x0 + xi * w
        t = xi * (1.0 - xi)
        den = s + c2 * t
        grad = s**2 * (d1 * xi**2 + 2.0 * s * t + d0 * (1.0 - xi) ** 2) / den**2
        return jnp.where(inside, x, y), jnp.where(inside, -jnp.log(grad), 0.0)
