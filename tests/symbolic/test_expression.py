"""Encoded expressions against SymPy: evaluation on random trees, exports, round trips."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

from jaxgen.symbolic import Expression, Operator, OperatorSet, Population
from jaxgen.symbolic import tree as T
from jaxgen.symbolic.evaluate import naive_population
from jaxgen.symbolic.operators import CONST, FIRST_OP, VAR

OPS = OperatorSet(
    ["+", "-", "*", "/", "pow", "sqrt", "exp", "log", "sin", "cos", "tanh", "abs", "square",
     "cube"]
)
NAMES = ("x0", "x1", "x2")


def random_tree(rng, size):
    ar = OPS.arity_table()
    if size <= 1:
        if rng.random() < 0.7:
            return ((VAR, int(rng.integers(3))),)
        return ((CONST, float(np.round(rng.uniform(-2, 2) * 8) / 8)),)  # exact in float32
    c = int(rng.integers(FIRST_OP, OPS.num_codes))
    if ar[c] == 1:
        return ((c, 0.0),) + random_tree(rng, size - 1)
    left = int(rng.integers(1, size - 1)) if size > 2 else 1
    return ((c, 0.0),) + random_tree(rng, left) + random_tree(rng, max(size - 1 - left, 1))


@pytest.fixture(scope="module")
def trees():
    rng = np.random.default_rng(0)
    out = [random_tree(rng, int(rng.integers(1, 25))) for _ in range(120)]
    return [t for t in out if len(t) <= 30]


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(1).uniform(0.5, 2.0, (40, 3)).astype(np.float32)


def sympy_values(tree, X):
    expr = T.to_sympy(tree, OPS, NAMES)
    symbols = [sympy.Symbol(n, real=True) for n in NAMES]
    f = sympy.lambdify(symbols, expr, "numpy")
    try:
        with np.errstate(all="ignore"):
            v = np.asarray(f(*[X[:, j].astype(np.complex128) for j in range(3)]))
    except TypeError:  # SymPy rewrote the tree with a function NumPy lacks for complex input
        g = sympy.lambdify(symbols, expr, "mpmath")
        v = np.array([_mp(g, row) for row in X], np.complex128)
    v = np.broadcast_to(v, (X.shape[0],))
    # a real-valued evaluator is undefined where SymPy's value is complex
    return np.where(np.abs(v.imag) > 1e-9 * (1 + np.abs(v.real)), np.nan, v.real)


def _mp(g, row):
    try:
        return complex(g(*[float(r) for r in row]))
    except (ValueError, ZeroDivisionError, OverflowError):
        return complex("nan")


def test_population_matches_sympy_on_random_trees(trees, X):
    # float64 on both sides so that badly conditioned random trees still agree closely
    with jax.enable_x64(True):
        pop = Population.from_trees(trees, OPS, capacity=32, num_constants=16)
        pop = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32
                                     else a, pop)
        Y = np.asarray(pop.evaluate(jnp.asarray(X, jnp.float64), window=8))
    assert Y.dtype == np.float64
    checked = 0
    for tree, y in zip(trees, Y):
        ref = sympy_values(tree, X.astype(np.float64))
        # compare only where the tree is well conditioned: a 1e-12 relative change of the
        # inputs moves the value by less than 1e-9 relative (cos of 1e280 is not)
        ref2 = sympy_values(tree, X.astype(np.float64) * (1 + 1e-12))
        stable = np.abs(ref2 - ref) <= 1e-9 * (1 + np.abs(ref))
        m = np.isfinite(y) & np.isfinite(ref) & stable
        np.testing.assert_allclose(y[m], ref[m], rtol=1e-6, atol=1e-9,
                                   err_msg=T.to_string(tree, OPS, NAMES))
        checked += m.mean() > 0.5
    assert checked > len(trees) // 2  # most random trees are finite somewhere: the check has teeth


def test_single_expression_and_population_agree(trees, X):
    pop = Population.from_trees(trees[:20], OPS, capacity=32, num_constants=16)
    Y = np.asarray(pop.evaluate(jnp.asarray(X)))
    # the single-expression evaluator, vmapped over the same expressions
    arrays = (pop.code, pop.arg, pop.reg, pop.child, pop.constants)
    Z = np.asarray(jax.jit(naive_population, static_argnames="operators")(
        *arrays, jnp.asarray(X), operators=OPS))
    assert np.array_equal(np.isfinite(Z), np.isfinite(Y))
    both = np.isfinite(Z)
    np.testing.assert_allclose(Z[both], Y[both], rtol=1e-5, atol=1e-6)
    # and one Expression called directly
    y0 = np.asarray(pop.expression(0, NAMES)(jnp.asarray(X)))
    np.testing.assert_allclose(y0[both[0]], Y[0][both[0]], rtol=1e-5, atol=1e-6)


def test_encode_decode_round_trip(trees):
    ar = OPS.arity_table()
    arrays = T.encode(trees, 32, 16, ar)
    for i, tree in enumerate(trees):
        back = T.decode(*(a[i] for a in arrays), ar)
        assert [c for c, _ in back] == [c for c, _ in tree]
        np.testing.assert_allclose([v for _, v in back], [v for _, v in tree], rtol=1e-6)


def test_registers_stay_small(trees):
    arrays = T.encode(trees, 32, 16, OPS.arity_table())
    assert arrays[2].max() < T.registers_needed(32)


def test_exports_round_trip(X):
    e = Expression.from_sympy("x0 * sin(x1) + exp(-x2) / 2", NAMES, OPS)
    truth = X[:, 0] * np.sin(X[:, 1]) + np.exp(-X[:, 2]) / 2
    np.testing.assert_allclose(e(jnp.asarray(X)), truth, rtol=1e-5)
    f = jax.jit(e.to_jax())
    np.testing.assert_allclose(f(jnp.asarray(X)), truth, rtol=1e-5)
    x0, x1, x2 = sympy.symbols("x0 x1 x2", real=True)
    assert sympy.simplify(e.sympy() - (x0 * sympy.sin(x1) + sympy.exp(-x2) / 2)) == 0
    again = Expression.from_sympy(e.sympy(), NAMES, OPS)
    np.testing.assert_allclose(again(jnp.asarray(X)), truth, rtol=1e-5)
    assert "sin" in e.latex() and "\\" in e.latex()
    assert "sin(x1)" in str(e)
    # the JAX export is differentiable
    g = jax.grad(lambda X: e.to_jax()(X).sum())(jnp.asarray(X))
    np.testing.assert_allclose(g[:, 0], np.sin(X[:, 1]), rtol=1e-5)


def test_bad_expression_does_not_poison_batch(X):
    trees = [
        T.from_sympy("log(x0 - 10)", NAMES, OPS),  # NaN everywhere
        ((OPS.code("/"), 0.0), (VAR, 0), (OPS.code("-"), 0.0), (VAR, 1), (VAR, 1)),  # x0/0
        T.from_sympy("x0 + x1", NAMES, OPS),
    ]
    Y = np.asarray(Population.from_trees(trees, OPS).evaluate(jnp.asarray(X)))
    assert not np.isfinite(Y[0]).any() and not np.isfinite(Y[1]).any()
    np.testing.assert_allclose(Y[2], X[:, 0] + X[:, 1], rtol=1e-6)


def test_custom_operator_and_rejection():
    sinc = Operator("sinc", 1, jnp.sinc, sympy_fn=lambda a: sympy.sin(sympy.pi * a) / (sympy.pi * a))
    ops = OperatorSet(["+", "*", sinc])
    e = Expression.from_tree(((ops.code("sinc"), 0.0), (VAR, 0)), ops, ["x"])
    x = jnp.linspace(0.1, 2.0, 7)[:, None]
    np.testing.assert_allclose(e(x), np.sinc(np.asarray(x[:, 0])), rtol=1e-5)
    assert "sin" in str(e.sympy())
    with pytest.raises(TypeError, match="not a JAX function"):
        Operator("bad", 1, lambda a: float(a))
    with pytest.raises(TypeError, match="JAX function"):
        OperatorSet(["+", 3])
    with pytest.raises(ValueError, match="Unknown operator"):
        OperatorSet(["+", "sinh2"])
