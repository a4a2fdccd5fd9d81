"""The discrete-outcome design problems: hyperbolic discounting and the death process."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf
from scipy.stats import binom, norm

import jaxgen as jg


@pytest.mark.parametrize("link", ["erf", "probit"])
def test_hyperbolic_choice_probability_and_likelihood(link):
    sim = jg.simulators.HyperbolicDiscounting(link=link)
    theta = jnp.array([-4.0, 3.0])  # k = e^-4, alpha = 3
    design = jnp.array([[40.0, 30.0], [80.0, 5.0], [20.0, 900.0]])
    later = 100.0 / (1.0 + math.exp(-4.0) * np.asarray(design[:, 1]))
    z = (np.asarray(design[:, 0]) - later) / 3.0
    choice = 0.5 * (1 + erf(z)) if link == "erf" else norm.cdf(z)
    p = 0.01 + 0.98 * choice
    x = jnp.array([1.0, 0.0, 1.0])
    expected = np.sum(np.log(np.where(np.asarray(x) == 1, p, 1 - p)))
    assert float(sim.log_likelihood(theta, x, design)) == pytest.approx(expected, rel=1e-5)


def test_hyperbolic_answer_frequency_matches_probability():
    sim = jg.simulators.HyperbolicDiscounting()
    theta = jnp.array([-4.0, 3.0])
    design = jnp.array([52.0, 30.0])
    later = 100.0 / (1.0 + math.exp(-4.0) * 30.0)
    p = 0.01 + 0.98 * 0.5 * (1 + erf((52.0 - later) / 3.0))
    n = 20_000
    x = jax.vmap(lambda k: sim(k, theta, design))(jax.random.split(jax.random.key(0), n))
    # The frequency has standard error sqrt(p (1 - p) / n); 5 of them: false alarms < 1e-6.
    assert abs(float(x.mean()) - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_hyperbolic_bad_input():
    with pytest.raises(ValueError, match="link"):
        jg.simulators.HyperbolicDiscounting(link="logit")
    with pytest.raises(ValueError, match="epsilon"):
        jg.simulators.HyperbolicDiscounting(epsilon=0.7)
    sim = jg.simulators.HyperbolicDiscounting()
    with pytest.raises(ValueError, match=r"\(R, D\)"):
        sim(jax.random.key(0), jnp.array([-4.0, 1.0]), jnp.array([1.0, 2.0, 3.0]))
    low, high, log_scale = sim.design_bounds()
    assert np.asarray(log_scale).tolist() == [False, True] and float(low[1]) > 0


def test_death_process_counts_are_binomial():
    sim = jg.simulators.DeathProcess()
    theta = jnp.array([1.2])
    design = jnp.array([0.7])
    # x ~ Binomial(50, 1 - exp(-theta tau)); its mean has standard error sqrt(var / n).
    n = 20_000
    x = jax.vmap(lambda k: sim(k, theta, design))(jax.random.split(jax.random.key(1), n))
    x = np.asarray(x).reshape(n)
    assert x.min() >= 0 and x.max() <= 50 and np.all(x == np.round(x))
    p = 1 - math.exp(-1.2 * 0.7)
    assert abs(x.mean() - 50 * p) < 5 * math.sqrt(50 * p * (1 - p) / n)
    ll = float(sim.log_likelihood(theta, jnp.array([20.0]), design))
    assert ll == pytest.approx(binom.logpmf(20, 50, p), rel=1e-5)
