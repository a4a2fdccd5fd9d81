"""The simulator contract."""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray


class AbstractSimulator(eqx.Module):
    """A simulator: a prior over a flat parameter vector and a pure forward model.

    Subclasses define a ``prior`` field (a numpyro distribution with event shape ``(d,)``) and
    ``__call__(key, theta, design=None)``, which simulates ONE example. Batching, chunking and
    devices are handled by :func:`jaxgen.simulate`; write the single-example function only.

    A simulator whose likelihood is tractable also overrides :meth:`log_likelihood`; this unlocks
    exact checks and likelihood-based experiment-design bounds. Simulators that accept a design
    override :meth:`default_design`.

    Example:
        ```python
        class Line(jg.simulators.AbstractSimulator):
            prior: dist.Distribution = dist.Normal(0.0, 1.0).expand([2]).to_event(1)

            def __call__(self, key, theta, design=None):
                t = self.default_design() if design is None else design
                return theta[0] + theta[1] * t + 0.1 * jax.random.normal(key, t.shape)

            def default_design(self):
                return jnp.linspace(0.0, 1.0, 5)
        ```
    """

    prior: eqx.AbstractVar[dist.Distribution]

    @abc.abstractmethod
    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " d"], design: Any = None
    ) -> Float[Array, "*x_shape"]:
        """Simulate one example ``x`` for one parameter vector ``theta``."""

    def default_design(self) -> Any:
        """The design used when ``design=None`` (``None`` for simulators without a design)."""
        return None

    def log_likelihood(
        self, theta: Float[Array, " d"], x: Float[Array, "*x_shape"], design: Any = None
    ) -> Float[Array, ""]:
        """log p(x | theta, design) for one example, where the likelihood is tractable."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement `log_likelihood`: its likelihood is not "
            f"tractable. Use a likelihood-free method instead (e.g. `jg.sbi.npe`, or an "
            f"InfoNCE bound for experiment design)."
        )

    @property
    def has_likelihood(self) -> bool:
        """Whether :meth:`log_likelihood` is implemented."""
        return type(self).log_likelihood is not AbstractSimulator.log_likelihood

    @property
    def theta_dim(self) -> int:
        return int(self.prior.event_shape[0])

    def x_shape(self, design: Any = None) -> tuple[int, ...]:
        """Shape of one simulated example, found by tracing (no computation)."""
        theta = jax.ShapeDtypeStruct(self.prior.event_shape, jax.numpy.float32)
        out = jax.eval_shape(lambda t: self(jax.random.key(0), t, design), theta)
        return tuple(out.shape)
