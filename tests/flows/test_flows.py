"""Conformance suite for every flow configuration, plus transformer and training checks.

JAX compile time dominates these tests, so each flow configuration is built once (cached) and all
of its numeric checks run in one compiled program (the ``checked`` fixture); shape checks use
``jax.eval_shape``, which traces without compiling.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.stats import norm

import jaxgen.flows as jgf

SMALL = {"num_layers": 2, "hidden_size": 8, "num_hidden": 1}


def _perturb(module, seed, scale):
    """Add Gaussian noise to every float array, so checks do not run on the identity init.

    NumPy noise: test set-up then needs no compiled JAX programs.
    """
    params, static = eqx.partition(module, eqx.is_inexact_array)
    rng = np.random.default_rng(seed)
    params = jax.tree.map(
        lambda a: a + jnp.asarray(scale * rng.standard_normal(a.shape), a.dtype), params
    )
    return eqx.combine(params, static)


def _spline():
    return jgf.RationalQuadraticSpline(num_bins=4, interval=3.0)


# name -> (builder, dim, cond_dim, transformer factory). The 1-D entries cover the special
# cases: a coupling layer with nothing to condition on but the condition, and a MADE with no
# inputs at all (its parameters are learned constants).
CONFIGS = {
    "coupling_affine": (jgf.coupling_flow, 3, None, jgf.Affine),
    "coupling_affine_cond": (jgf.coupling_flow, 3, 2, jgf.Affine),
    "coupling_spline": (jgf.coupling_flow, 3, None, _spline),
    "coupling_spline_cond": (jgf.coupling_flow, 3, 2, _spline),
    "maf_affine": (jgf.masked_autoregressive_flow, 3, None, jgf.Affine),
    "maf_affine_cond": (jgf.masked_autoregressive_flow, 3, 2, jgf.Affine),
    "maf_spline": (jgf.masked_autoregressive_flow, 3, None, _spline),
    "maf_spline_cond": (jgf.masked_autoregressive_flow, 3, 2, _spline),
    "coupling_spline_1d_cond": (jgf.coupling_flow, 1, 2, _spline),
    "maf_affine_1d": (jgf.masked_autoregressive_flow, 1, None, jgf.Affine),
}


@functools.cache
def _build(name):
    builder, dim, cond_dim, transformer = CONFIGS[name]
    flow = builder(jax.random.key(0), dim, cond_dim=cond_dim, transformer=transformer(), **SMALL)
    return _perturb(flow, 100, 0.2)


def _condition(flow):
    if flow.cond_dim is None:
        return None
    return jnp.asarray(np.random.default_rng(7).standard_normal(flow.cond_dim), jnp.float32)


# These programs run once on tiny inputs, so the XLA CPU options trade run-time speed for a
# compile that is 2-3x faster.
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


def _compile_and_run(fn, *args):
    """``eqx.filter_jit`` with the fast-compile options above."""
    dynamic, static = eqx.partition(args, eqx.is_array)
    jitted = jax.jit(lambda d: fn(*eqx.combine(d, static)))
    return jitted.lower(dynamic).compile(_FAST_COMPILE)(dynamic)


def _conformance(flow, condition, condition_batch):
    """Every numeric check of one flow in one compiled program (compile time dominates)."""
    out = {}
    z = jax.random.normal(jax.random.key(3), (flow.dim,))
    out["z"] = z
    x, out["log_det"] = flow.transform_and_log_det(z, condition)
    out["z_back"], out["inv_log_det"] = flow.inverse_and_log_det(x, condition)
    out["jac_log_det"] = jnp.linalg.slogdet(jax.jacfwd(flow.transform)(z, condition))[1]
    layer = flow.layer(1)
    out["layer_log_det"] = layer.transform_and_log_det(z, condition)[1]
    out["layer_jac_log_det"] = jnp.linalg.slogdet(jax.jacfwd(layer.transform)(z, condition))[1]

    # Keys 1, 1, 2 through the public method under vmap: same key, same draw.
    keys = jax.random.wrap_key_data(
        jnp.stack([jax.random.key_data(jax.random.key(i)) for i in (1, 1, 2)])
    )
    draws, draw_log_p = jax.vmap(lambda k: flow.sample_and_log_prob(k, condition, 16))(keys)
    out["samples"], out["log_p"] = draws[0], draw_log_p[0]
    out["same_key"], out["other_key"] = draws[1], draws[2]

    # Gradients of log_prob with respect to the parameters and the points, at the samples and
    # far outside the spline interval.
    far = jnp.stack([jnp.full(flow.dim, 50.0), jnp.full(flow.dim, -50.0)])
    points = jnp.concatenate([out["samples"], far])

    def mean_log_prob(flow_and_points):
        f, pts = flow_and_points
        log_p = f.log_prob(pts, condition)
        return jnp.mean(log_p), log_p

    (_, log_p), (param_grads, x_grads) = eqx.filter_value_and_grad(
        mean_log_prob, has_aux=True
    )((flow, points))
    out["log_p_again"], out["far_log_p"] = log_p[:16], log_p[16:]
    out["param_grads"] = jax.tree.leaves(eqx.filter(param_grads, eqx.is_inexact_array))
    out["x_grads"] = x_grads

    if condition_batch is not None:
        s, lp = flow.sample_and_log_prob(jax.random.key(4), condition_batch, 2)
        out["batch_samples"], out["batch_log_p"] = s, lp
        # log_prob broadcasts the (4, 3) batch of conditions against the sample axis.
        out["batch_log_p_again"] = flow.log_prob(s, condition_batch)
    return out


@pytest.fixture(scope="module", params=list(CONFIGS))
def checked(request):
    flow = _build(request.param)
    condition = _condition(flow)
    batch = None
    # The batching logic is shared by all flows (base class); one config checks it numerically.
    if request.param in ("coupling_spline_cond", "maf_affine_cond"):
        batch = jnp.asarray(np.random.default_rng(5).standard_normal((4, 3, flow.cond_dim)))
    return flow, condition, _compile_and_run(_conformance, flow, condition, batch)


def test_invertible_and_log_det_matches_jacobian(checked):
    _, _, out = checked
    np.testing.assert_allclose(out["z_back"], out["z"], atol=1e-4)
    # float32 round-off through a few small, well-conditioned layers.
    np.testing.assert_allclose(out["log_det"], out["jac_log_det"], atol=1e-3)
    np.testing.assert_allclose(out["inv_log_det"], -out["log_det"], atol=1e-3)
    np.testing.assert_allclose(out["layer_log_det"], out["layer_jac_log_det"], atol=1e-3)
    # The perturbed flow is not the identity, so the checks above are not trivially true.
    assert abs(float(out["log_det"])) > 1e-3


def test_sample_log_prob_agree_and_keys(checked):
    flow, _, out = checked
    assert out["samples"].shape == (16, flow.dim) and out["log_p"].shape == (16,)
    np.testing.assert_allclose(out["log_p_again"], out["log_p"], atol=2e-3, rtol=1e-4)
    np.testing.assert_allclose(out["same_key"], out["samples"], rtol=1e-6, atol=1e-6)
    assert not np.allclose(out["other_key"], out["samples"])
    assert np.all(np.isfinite(out["samples"])) and np.all(np.isfinite(out["log_p"]))


def test_far_outside_finite_values_and_gradients(checked):
    _, _, out = checked
    assert np.all(np.isfinite(out["far_log_p"]))
    assert all(np.all(np.isfinite(g)) for g in out["param_grads"])
    assert any(np.any(g != 0) for g in out["param_grads"])
    assert np.all(np.isfinite(out["x_grads"]))


def _shape(fn, *args):
    return jax.eval_shape(fn, *args).shape


def test_batched_shapes_and_errors(checked):
    flow, condition, out = checked
    key = jax.random.key(4)
    d = flow.dim
    if flow.cond_dim is None:
        assert _shape(lambda k: flow.sample(k), key) == (d,)
        assert _shape(lambda k: flow.sample(k, num_samples=5), key) == (5, d)
        s, lp = jax.eval_shape(lambda k: flow.sample_and_log_prob(k), key)
        assert s.shape == (d,) and lp.shape == ()
        assert _shape(flow.log_prob, jnp.zeros((4, 3, d))) == (4, 3)
        assert _shape(flow.log_prob, jnp.zeros(d)) == ()
        with pytest.raises(ValueError, match="unconditional"):
            flow.log_prob(jnp.zeros(d), jnp.zeros(2))
    else:
        c = flow.cond_dim
        cond = jnp.zeros((4, 3, c))
        if "batch_samples" in out:
            assert out["batch_samples"].shape == (2, 4, 3, d)
            assert out["batch_log_p"].shape == (2, 4, 3)
            np.testing.assert_allclose(
                out["batch_log_p_again"], out["batch_log_p"], atol=2e-3, rtol=1e-4
            )
        assert _shape(lambda k: flow.sample(k, cond[0, 0]), key) == (d,)
        assert _shape(lambda k: flow.sample(k, cond[0, 0], 5), key) == (5, d)
        assert _shape(lambda k: flow.sample(k, cond), key) == (4, 3, d)
        assert _shape(flow.log_prob, jnp.zeros((5, d)), cond[0, 0]) == (5,)
        assert _shape(flow.log_prob, jnp.zeros(d), cond[0, 0]) == ()
        assert _shape(flow.log_prob, jnp.zeros(d), cond) == (4, 3)
        with pytest.raises(ValueError, match="needs a condition"):
            flow.log_prob(jnp.zeros((5, d)))
        with pytest.raises(ValueError, match="do not broadcast"):
            flow.log_prob(jnp.zeros((5, d)), jnp.zeros((4, c)))
        with pytest.raises(ValueError, match=rf"\(\*batch, {c}\)"):
            flow.log_prob(jnp.zeros((5, d)), jnp.zeros(c + 1))
    with pytest.raises(ValueError, match=rf"\(\*batch, {d}\)"):
        flow.log_prob(jnp.zeros((5, d + 1)), condition)
    with pytest.raises(TypeError, match="legacy"):
        flow.sample(jax.random.PRNGKey(0), condition)
    with pytest.raises(ValueError, match="num_samples"):
        flow.sample(key, condition, 0)


def _quadrature_1d(flow, condition, half_width):
    fine = jnp.linspace(-half_width, half_width, 4001)
    density = jnp.exp(flow.log_prob(fine[:, None], condition))
    coarse_mass = jnp.trapezoid(density[::2], fine[::2])
    fine_mass = jnp.trapezoid(density, fine)
    lo = flow.inverse(jnp.array([-half_width]), condition)[0]
    hi = flow.inverse(jnp.array([half_width]), condition)[0]
    return coarse_mass, fine_mass, norm.cdf(hi) - norm.cdf(lo)


@pytest.mark.parametrize("name", ["coupling_spline_1d_cond", "maf_affine_1d"])
def test_normalised_1d(name):
    flow = _build(name)
    # Every layer of a 1-D flow is increasing, so the exact mass on [-L, L] is
    # Phi(T^{-1}(L)) - Phi(T^{-1}(-L)) in the standard normal base.
    coarse, fine, exact = map(float, _compile_and_run(_quadrature_1d, flow, _condition(flow), 6.0))
    assert exact > 0.9  # the box holds most of the mass, so the check is informative
    # Trapezoid error is O(h^2) for a continuous, piecewise-smooth density, so the fine-grid
    # error is about |coarse - fine| / 3 (Richardson); 4x that plus float32 summation round-off
    # (~1e-4 for 4001 terms of size <= 1) bounds it.
    tol = 4 * abs(coarse - fine) + 1e-4
    assert abs(fine - exact) < tol


def _quadrature_2d(flow, half_width, n, num_samples):
    grid = jnp.linspace(-half_width, half_width, n)
    xx, yy = jnp.meshgrid(grid, grid, indexing="ij")
    density = jnp.exp(flow.log_prob(jnp.stack([xx, yy], -1)))
    fine_mass = jnp.trapezoid(jnp.trapezoid(density, grid), grid)
    coarse_mass = jnp.trapezoid(jnp.trapezoid(density[::2, ::2], grid[::2]), grid[::2])
    samples = flow.sample(jax.random.key(8), num_samples=num_samples)
    num_outside = jnp.sum(jnp.any(jnp.abs(samples) > half_width, axis=-1))
    return coarse_mass, fine_mass, num_outside


@pytest.mark.parametrize("name", ["coupling_spline", "maf_affine"])
def test_normalised_2d(name):
    builder, _, _, transformer = CONFIGS[name]
    flow = builder(jax.random.key(5), 2, transformer=transformer(), **SMALL)
    flow = _perturb(flow, 6, 0.2)
    m = 20_000
    coarse, fine, k = map(float, _compile_and_run(_quadrature_2d, flow, 7.0, 281, m))
    # The box misses the mass outside it, estimated from m samples with k outside; the standard
    # error of that fraction is sqrt(p(1-p)/m) <= sqrt(max(k, 1)/m)/sqrt(m). Trapezoid error on the
    # fine grid: |coarse - fine| / 3 by Richardson extrapolation (O(h^2)); 4x bounds it.
    inside = 1.0 - k / m
    tol = 3 * np.sqrt(max(k, 1) / m) / np.sqrt(m) + 4 * abs(coarse - fine) + 1e-4
    assert abs(fine - inside) < tol


def test_identity_at_initialisation():
    x = jnp.array([[0.3, -1.2], [4.0, 0.1]])
    expected = jnp.sum(norm.logpdf(x), axis=-1)
    for builder in (jgf.coupling_flow, jgf.masked_autoregressive_flow):
        flow = builder(jax.random.key(0), 2, cond_dim=1, **SMALL)
        log_p = _compile_and_run(lambda f: f.log_prob(x, jnp.ones(1)), flow)
        np.testing.assert_allclose(log_p, expected, rtol=1e-5)


def _num_eqns(jaxpr):
    """Equations in a jaxpr, counting those inside scan/jit bodies too."""
    total = 0
    for eqn in jaxpr.eqns:
        total += 1
        for value in eqn.params.values():
            inner = getattr(value, "jaxpr", None)
            if inner is not None and hasattr(inner, "eqns"):
                total += _num_eqns(inner)
    return total


@pytest.mark.parametrize("builder", [jgf.coupling_flow, jgf.masked_autoregressive_flow])
def test_program_size_does_not_grow_with_depth(builder):
    sizes = []
    x, c = jnp.zeros((4, 3)), jnp.zeros(1)
    key = jax.random.key(0)
    for num_layers in (2, 8):
        # An abstract flow (shapes only): tracing needs no concrete weights.
        flow = jax.eval_shape(
            lambda k, n=num_layers: builder(k, 3, cond_dim=1, num_layers=n, hidden_size=8), key
        )
        log_prob = jax.make_jaxpr(lambda f: f.log_prob(x, c))(flow).jaxpr
        sample = jax.make_jaxpr(lambda f: f.sample(key, c, 4))(flow).jaxpr
        sizes.append((_num_eqns(log_prob), _num_eqns(sample)))
    assert sizes[0] == sizes[1]
    assert sizes[0][0] > 10  # the count sees inside the scan


def _spline_checks(params, x):
    spline = jgf.RationalQuadraticSpline(num_bins=6, interval=2.0)
    y, log_det = jax.vmap(spline.transform_and_log_det)(x, params)
    x_back, inv_log_det = jax.vmap(spline.inverse_and_log_det)(y, params)
    deriv = jax.vmap(jax.grad(lambda a, p: spline.transform_and_log_det(a, p)[0]))(x, params)
    return y, log_det, x_back, inv_log_det, deriv


def test_spline_transformer():
    spline = jgf.RationalQuadraticSpline(num_bins=6, interval=2.0)
    rng = np.random.default_rng(0)
    params = jnp.asarray(0.7 * rng.standard_normal((200, spline.num_params)), jnp.float32)
    x = jnp.asarray(rng.uniform(-3.0, 3.0, 200), jnp.float32)
    y, log_det, x_back, inv_log_det, deriv = _compile_and_run(_spline_checks, params, x)
    np.testing.assert_allclose(x_back, x, atol=1e-4)
    np.testing.assert_allclose(inv_log_det, -log_det, atol=1e-4)
    np.testing.assert_allclose(jnp.log(deriv), log_det, atol=1e-4)
    outside = jnp.abs(x) > 2.0
    np.testing.assert_array_equal(y[outside], x[outside])
    # Zero parameters are the identity, for both transformers.
    for transformer in (spline, jgf.Affine()):
        zeros = jnp.zeros(transformer.num_params)
        out, ld = jax.jit(transformer.transform_and_log_det)(jnp.array(0.37), zeros)
        np.testing.assert_allclose(out, 0.37, rtol=1e-5)
        np.testing.assert_allclose(ld, 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="num_bins"):
        jgf.RationalQuadraticSpline(num_bins=0)


def test_builder_validation_and_aliases():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="cond_dim"):
        jgf.coupling_flow(key, 2, cond_dim=0)
    with pytest.raises(ValueError, match="dim"):
        jgf.masked_autoregressive_flow(key, 0)
    assert isinstance(jgf.real_nvp(key, 2, **SMALL).layers.transformer, jgf.Affine)
    assert isinstance(jgf.maf(key, 2, **SMALL).layers, jgf.MaskedAutoregressive)
    nsf = jgf.neural_spline_flow(key, 2, autoregressive=True, num_bins=5, **SMALL)
    assert isinstance(nsf.layers, jgf.MaskedAutoregressive)
    assert nsf.layers.transformer.num_bins == 5
    assert isinstance(jgf.neural_spline_flow(key, 2, **SMALL).layers, jgf.Coupling)
    assert isinstance(nsf, jgf.AbstractConditionalDensity)


def _train_and_sample(flow, c, x, c_test, num_samples):
    optimiser = optax.adam(1e-2)
    params, static = eqx.partition(flow, eqx.is_inexact_array)

    def loss_fn(p):
        return -jnp.mean(eqx.combine(p, static).log_prob(x, c))

    def step(carry, _):
        params, state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = optimiser.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    (params, _), losses = jax.lax.scan(
        step, (params, optimiser.init(params)), None, length=300
    )
    flow = eqx.combine(params, static)
    return losses, flow.sample(jax.random.key(1), c_test, num_samples=num_samples)


def test_training_learns_conditional_gaussian():
    # Data: c ~ U(-1, 1), x | c ~ N(mean(c), diag(sd^2)) with mean(c) = (2c, 1 - c).
    rng = np.random.default_rng(0)
    n = 1024
    sd = np.array([0.5, 0.3])
    c = rng.uniform(-1.0, 1.0, (n, 1))
    mean_fn = lambda c: np.concatenate([2.0 * c, 1.0 - c], axis=-1)
    x = mean_fn(c) + sd * rng.standard_normal((n, 2))
    c_test = np.array([0.5])

    flow = jgf.real_nvp(jax.random.key(0), 2, cond_dim=1, num_layers=3, hidden_size=16,
                        num_hidden=1)
    m = 4000
    losses, samples = _compile_and_run(
        _train_and_sample, flow, *(jnp.asarray(a, jnp.float32) for a in (c, x, c_test)), m
    )
    assert losses[-1] < losses[0]
    # Monte Carlo standard error of the sample mean is sd / sqrt(4000) <= 0.008; fitting 1024
    # points adds an estimation error of about sd * sqrt(2 / 1024) <= 0.022 per coordinate
    # (slope and intercept). 3 * (0.008 + 0.022) ~ 0.09; we allow 0.12 for the remaining
    # optimisation error of a 300-step fit.
    np.testing.assert_allclose(samples.mean(0), mean_fn(c_test), atol=0.12)
    # Sample sd has relative MC error 1/sqrt(2m) ~ 1%; allow 20% for the fit.
    np.testing.assert_allclose(samples.std(0), sd, rtol=0.2)
