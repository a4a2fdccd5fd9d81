import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen as jg


class Const(eqx.Module):
    c: jax.Array

    def __call__(self, x):
        return self.c


def mse(model, batch, key):
    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


@pytest.fixture(scope="module")
def regression():
    key = jax.random.key(0)
    x = jax.random.normal(key, (512, 2))
    y = x @ jnp.array([1.5, -2.0]) + 0.5
    return x, y


class Linear(eqx.Module):
    w: jax.Array
    b: jax.Array

    def __call__(self, x):
        return x @ self.w + self.b


def test_fit_recovers_linear_regression_and_is_deterministic(regression):
    x, y = regression
    model = Linear(jnp.zeros(2), jnp.zeros(()))
    key = jax.random.key(1)
    fitted, hist = jg.train.fit(key, model, mse, (x, y), learning_rate=0.05, max_epochs=60)
    # Noise-free data: the least-squares solution is exact, so Adam must get close to it.
    np.testing.assert_allclose(fitted.w, [1.5, -2.0], atol=0.02)
    np.testing.assert_allclose(fitted.b, 0.5, atol=0.02)
    assert hist.num_epochs == len(hist.train_loss) == len(hist.val_loss)
    assert hist.val_loss[hist.best_epoch] == np.nanmin(hist.val_loss)
    again, hist2 = jg.train.fit(key, model, mse, (x, y), learning_rate=0.05, max_epochs=60)
    assert jnp.array_equal(fitted.w, again.w) and jnp.array_equal(fitted.b, again.b)
    np.testing.assert_array_equal(hist.train_loss, hist2.train_loss)


def test_early_stopping_restores_best_model():
    # Training pulls c towards +1 while the validation set wants -1: the validation loss only
    # grows, so the best model is the one after the first epoch and training stops at `patience`.
    x = jnp.zeros((64, 1))
    train = (x, jnp.ones(64))
    val = (x, -jnp.ones(64))
    model = Const(jnp.asarray(0.0))
    fitted, hist = jg.train.fit(
        jax.random.key(0), model, mse, train, validation_data=val, patience=3,
        max_epochs=100, learning_rate=0.05, batch_size=16,
    )
    assert hist.stopped_early and hist.best_epoch == 0 and hist.num_epochs == 4
    # Validation loss of the returned model equals the best recorded one.
    assert float(mse(fitted, val, None)) == pytest.approx(hist.val_loss[0], rel=1e-6)
    assert float(fitted.c) > 0.0


def test_nan_rows_are_skipped_and_counted(regression):
    x, y = regression
    y = y.at[:5].set(jnp.nan)
    model = Linear(jnp.zeros(2), jnp.zeros(()))
    with pytest.warns(jg.JaxgenWarning, match="NaN/inf"):
        fitted, hist = jg.train.fit(
            jax.random.key(2), model, mse, (x, y), max_epochs=3, validation_fraction=0.0,
            batch_size=64,
        )
    assert hist.num_nonfinite_steps > 0
    assert jnp.all(jnp.isfinite(fitted.w))


def test_partial_trainable_filter(regression):
    x, y = regression
    model = Linear(jnp.zeros(2), jnp.asarray(7.0))
    spec = Linear(True, False)
    fitted, _ = jg.train.fit(jax.random.key(3), model, mse, (x, y), max_epochs=2, trainable=spec)
    assert float(fitted.b) == 7.0 and not jnp.allclose(fitted.w, 0.0)


def test_bad_input_messages(regression):
    x, y = regression
    model = Linear(jnp.zeros(2), jnp.zeros(()))
    with pytest.raises(TypeError, match="legacy"):
        jg.train.fit(jax.random.PRNGKey(0), model, mse, (x, y))
    with pytest.raises(ValueError, match="same number of rows"):
        jg.train.fit(jax.random.key(0), model, mse, (x, y[:10]))
    with pytest.raises(ValueError, match="empty"):
        jg.train.fit(jax.random.key(0), model, mse, (x[:0], y[:0]))
