"""The EIG-estimator contract and the chunked Monte Carlo machinery the estimators share."""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..simulators import AbstractSimulator

# At most this many (outer sample, contrastive sample) likelihood evaluations are live at once;
# larger contrastive sample sizes run as a scan over chunks, so memory stays bounded.
DEFAULT_CHUNK_SIZE = 2**18


class BoundKind(enum.Enum):
    """What an EIG estimator's expectation is relative to the true EIG."""

    LOWER = "lower bound"
    UPPER = "upper bound"
    CONSISTENT = "consistent estimate"


class AbstractEIGEstimator(eqx.Module):
    """An estimator of the expected information gain ``EIG(d) = I(theta; x | d)``.

    Concrete estimators declare ``kind`` (a :class:`BoundKind`) and implement
    :meth:`estimate_with_stderr`, which is differentiable in ``design`` (gradients are taken
    through the simulator). Estimators with learned parts (critics, proposals, variational
    posteriors) build them in :meth:`init` and hold them as array leaves: :meth:`objective` is
    what is maximised with respect to those leaves (and the design) during training.

    Example:
        ```python
        est = jg.boed.PriorContrastive(num_outer=256, num_inner=256)
        eig, stderr = est.estimate_with_stderr(key, sim, design)
        grad = jax.grad(lambda d: est.estimate(key, sim, d))(design)
        ```
    """

    kind: eqx.AbstractClassVar[BoundKind]

    @abc.abstractmethod
    def estimate_with_stderr(
        self, key: PRNGKeyArray, simulator: AbstractSimulator, design: Any
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """The EIG estimate at ``design`` and its Monte Carlo standard error."""

    def estimate(
        self, key: PRNGKeyArray, simulator: AbstractSimulator, design: Any
    ) -> Float[Array, ""]:
        """The EIG estimate at ``design`` (a scalar, differentiable in ``design``)."""
        return self.estimate_with_stderr(key, simulator, design)[0]

    def objective(
        self, key: PRNGKeyArray, simulator: AbstractSimulator, design: Any
    ) -> Float[Array, ""]:
        """What training ascends, in the design and in the learned leaves (default: the estimate)."""
        return self.estimate(key, simulator, design)

    def init(
        self, key: PRNGKeyArray, simulator: AbstractSimulator, design: Any
    ) -> AbstractEIGEstimator:
        """Build the learned parts for ``simulator`` at ``design``; no-op when there are none."""
        del key, simulator, design
        return self

    @property
    def is_learned(self) -> bool:
        """Whether the estimator has parameters that must be trained before it is meaningful."""
        return bool(jax.tree_util.tree_leaves(eqx.filter(self, eqx.is_inexact_array)))


def check_likelihood(simulator: AbstractSimulator, estimator_name: str) -> None:
    """Likelihood-based estimators need ``simulator.log_likelihood``."""
    if not getattr(simulator, "has_likelihood", False):
        raise TypeError(
            f"{estimator_name} needs the likelihood p(x | theta, design), but "
            f"{type(simulator).__name__} does not implement `log_likelihood`. Use a likelihood-"
            f"free estimator instead: `jg.boed.InfoNCE()`, `jg.boed.NWJ()`, "
            f"`jg.boed.DonskerVaradhan()` or `jg.boed.NeuralRatio()`."
        )


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}.")
    return value


def one_experiment_design(simulator: AbstractSimulator, design0: Any = None) -> Array:
    """``design0`` as a float array, or by default the first experiment of the simulator's
    default design (all of it when the simulator declares no ``design_bounds()``, whose
    design is then not a stack of per-experiment designs)."""
    if design0 is None:
        design0 = simulator.default_design()
        if design0 is None:
            raise ValueError("Pass `design0=`: the simulator has no default design.")
        design0 = jnp.asarray(design0, float)
        if design0.ndim >= 1 and callable(getattr(simulator, "design_bounds", None)):
            design0 = design0[0]
    return jnp.asarray(design0, float)


def decaying_adam(
    learning_rate: float, final_learning_rate: float | None, num_steps: int
) -> optax.GradientTransformation:
    """Adam (gradients clipped to norm 10) whose step size decays along a cosine from
    ``learning_rate`` to ``final_learning_rate`` (default ``learning_rate / 20``) over
    ``num_steps``. Stochastic EIG objectives are noisy: a constant step size keeps the last
    iterate wandering around the optimum, a decaying one lets it settle."""
    final = learning_rate / 20 if final_learning_rate is None else final_learning_rate
    if not (learning_rate > 0 and final > 0):
        raise ValueError(
            f"`learning_rate` and `final_learning_rate` must be positive, got "
            f"{learning_rate!r} and {final_learning_rate!r}."
        )
    schedule = optax.cosine_decay_schedule(
        learning_rate, max(int(num_steps), 1), alpha=min(final / learning_rate, 1.0)
    )
    return optax.chain(optax.clip_by_global_norm(10.0), optax.adam(schedule))


def sample_joint(
    key: PRNGKeyArray, simulator: AbstractSimulator, design: Any, num: int
) -> tuple[Float[Array, "num d"], Float[Array, "num ..."]]:
    """``num`` draws of ``(theta, x)`` from ``p(theta) p(x | theta, design)``."""
    k_theta, k_x = jax.random.split(key)
    theta = simulator.prior.sample(k_theta, (num,))
    x = jax.vmap(lambda k, t: simulator(k, t, design))(jax.random.split(k_x, num), theta)
    return theta, x


def chunked_logsumexp(
    key: PRNGKeyArray,
    sample_fn: Callable[[PRNGKeyArray, int], Array],
    log_fn: Callable[[Array], Float[Array, " n"]],
    num: int,
    chunk: int,
) -> Float[Array, ""]:
    """``log sum_l exp(log_fn(theta_l))`` over ``num`` draws from ``sample_fn``, in chunks.

    With ``num <= chunk`` it is one vectorised call. Otherwise a ``lax.scan`` runs over chunks
    (rematerialised in the backward pass) carrying the running log-sum-exp, so memory does not
    grow with ``num``; the last chunk is masked to keep exactly ``num`` terms.
    """
    if num <= chunk:
        return jax.nn.logsumexp(log_fn(sample_fn(key, num)))
    num_chunks = -(-num // chunk)

    @jax.checkpoint
    def body(carry, i):
        values = log_fn(sample_fn(jax.random.fold_in(key, i), chunk))
        valid = i * chunk + jnp.arange(chunk) < num
        values = jnp.where(valid, values, -jnp.inf)
        return jnp.logaddexp(carry, jax.nn.logsumexp(values)), None

    total, _ = jax.lax.scan(body, jnp.array(-jnp.inf), jnp.arange(num_chunks))
    return total


def map_outer(
    fn: Callable[[PRNGKeyArray], Any], key: PRNGKeyArray, num_outer: int, batch: int
) -> Any:
    """``vmap`` ``fn`` over ``num_outer`` keys, in batches of ``batch`` when that is smaller."""
    keys = jax.random.split(key, num_outer)
    if batch >= num_outer:
        return jax.vmap(fn)(keys)
    return jax.lax.map(fn, keys, batch_size=max(1, batch))


def inner_chunking(num_outer: int, num_inner: int, chunk_size: int) -> tuple[int, int]:
    """Split a budget of ``chunk_size`` live pairs into (outer batch, inner chunk)."""
    inner = max(1, min(num_inner, chunk_size))
    outer = max(1, min(num_outer, chunk_size // inner))
    return outer, inner


def mean_and_stderr(terms: Float[Array, " n"]) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """Sample mean and its standard error ``std / sqrt(n)`` (i.i.d. terms)."""
    n = terms.shape[0]
    mean = jnp.mean(terms)
    stderr = jnp.std(jax.lax.stop_gradient(terms), ddof=1 if n > 1 else 0) / math.sqrt(n)
    return mean, stderr
