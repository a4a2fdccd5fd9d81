import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import jaxgen as jg


def test_shapes_and_grad():
    key = jax.random.key(0)
    nets = [
        (jg.nn.MLP(3, 2, key=key), (3,)),
        (jg.nn.ResidualMLP(3, 2, depth=3, key=key), (3,)),
        (jg.nn.MLPEmbedding((4, 5), out_size=6, key=key), (4, 5)),
        (jg.nn.CNN1dEmbedding((40,), out_size=6, key=key), (40,)),
        (jg.nn.CNN1dEmbedding((2, 33), out_size=6, key=key), (2, 33)),
        (jg.nn.IdentityEmbedding((4, 5)), (4, 5)),
    ]
    for net, shape in nets:
        x = jax.random.normal(key, (7, *shape))
        out = jax.vmap(net)(x)
        assert out.shape[0] == 7 and jnp.all(jnp.isfinite(out))
        out_jit = eqx.filter_jit(lambda n, x: jax.vmap(n)(x))(net, x)
        np.testing.assert_allclose(out, out_jit, rtol=1e-5, atol=1e-6)
        g = jax.grad(lambda x: jnp.sum(net(x)))(x[0])
        assert g.shape == shape and jnp.all(jnp.isfinite(g))


def test_residual_mlp_compile_size_does_not_grow_with_depth():
    key = jax.random.key(0)

    def num_eqns(depth):
        net = jg.nn.ResidualMLP(3, 2, depth=depth, key=key)
        return len(jax.make_jaxpr(net)(jnp.ones(3)).jaxpr.eqns)

    assert num_eqns(2) == num_eqns(12)


def test_standardizer_round_trip_and_frozen():
    data = jax.random.normal(jax.random.key(1), (100, 3)) * jnp.array([1.0, 10.0, 0.0]) + 4.0
    s = jg.nn.Standardizer.from_data(data)
    z = s(data)
    np.testing.assert_allclose(jnp.mean(z[:, :2], 0), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(z[:, :2], 0), 1.0, atol=1e-4)
    assert jnp.all(jnp.isfinite(z))  # constant column is not divided by zero
    np.testing.assert_allclose(s.inverse(z), data, rtol=1e-5, atol=1e-4)
    g = jax.grad(lambda s: jnp.sum(s(data)))(s)
    assert jnp.all(g.mean == 0) and jnp.all(g.std == 0)
