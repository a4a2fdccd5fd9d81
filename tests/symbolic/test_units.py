"""Units: parsing, dimensional consistency of trees, Buckingham-pi reduction."""

import numpy as np
import pytest
import sympy

from jaxgen.symbolic import OperatorSet
from jaxgen.symbolic import tree as T
from jaxgen.symbolic.units import (
    buckingham_pi,
    expression_dimensions,
    parse_units,
    units_matrix,
)

OPS = OperatorSet(["+", "-", "*", "/", "pow", "sqrt", "exp", "sin", "square"])
# F = q * E (Feynman I.12.5): q in coulomb (kg m^2 s^-2 V^-1), E in V/m, F in newton
NAMES = ["q", "Ef", "m"]
D = units_matrix(["m^2 s^-2 kg V^-1", "m^-1 V", "kg"], 3)


def dims(text):
    return expression_dimensions(T.from_sympy(text, NAMES, OPS), D, OPS)


def test_parse_units():
    np.testing.assert_array_equal(parse_units("m s^-2 kg"), [1, -2, 1, 0, 0])
    np.testing.assert_array_equal(parse_units("1"), np.zeros(5))
    np.testing.assert_array_equal(parse_units([0, 1, 0, 0, 0]), [0, 1, 0, 0, 0])
    with pytest.raises(ValueError, match="Cannot read the unit"):
        parse_units("furlong")
    with pytest.raises(ValueError, match="5 exponents"):
        parse_units([1, 2])
    with pytest.raises(ValueError, match="one entry per column"):
        units_matrix(["m"], 2)


def test_dimensions_of_expressions():
    np.testing.assert_allclose(dims("q * Ef"), [1, -2, 1, 0, 0])  # a force
    np.testing.assert_allclose(dims("sqrt(m) * sqrt(m)"), [0, 0, 1, 0, 0])
    assert dims("q + Ef") is False  # coulombs plus volts per metre
    assert dims("exp(m)") is False  # exp of a mass
    assert dims("m ** q") is False  # a power that is not dimensionless
    # a free constant may carry any units: c * m + q is consistent
    assert dims("2.5 * m + q") is not False
    assert dims("exp(m / (2.0 * m))") is not False


def test_buckingham_pi_on_feynman_equation():
    # I.12.11: F = q (Ef + B v sin(theta)); inputs q, Ef, B, v, theta
    units = ["m^2 s^-2 kg V^-1", "m^-1 V", "m^-2 s V", "m s^-1", "1"]
    Dm = units_matrix(units, 5)
    red = buckingham_pi(Dm, parse_units("m s^-2 kg"))
    # every group is dimensionless, the prefactor has the units of a force
    for g in red.groups:
        np.testing.assert_allclose(g @ Dm, 0, atol=1e-12)
    np.testing.assert_allclose(red.prefactor @ Dm, [1, -2, 1, 0, 0], atol=1e-12)
    assert len(red.groups) == 5 - np.linalg.matrix_rank(Dm)
    # the transformed problem and the expansion back agree with the law
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (50, 5))
    y = X[:, 0] * (X[:, 1] + X[:, 2] * X[:, 3] * np.sin(X[:, 4]))
    P, z = red.transform(X, y)
    assert P.shape == (50, len(red.groups))
    # g(pi) = z exactly for the true law; check by expanding a tree that reproduces z
    q, Ef, B, v, th = sympy.symbols("q Ef B v theta", real=True)
    syms = [q, Ef, B, v, th]
    pre = sympy.Mul(*[s ** sympy.Rational(e).limit_denominator(6) for s, e in
                      zip(syms, red.prefactor)])
    f = sympy.lambdify(syms, sympy.simplify(q * (Ef + B * v * sympy.sin(th)) / pre), "numpy")
    np.testing.assert_allclose(f(*X.T), z, rtol=1e-9)


def test_no_monomial_with_output_units_is_reported():
    with pytest.raises(ValueError, match="cannot be made dimensionless"):
        buckingham_pi(units_matrix(["m", "m"], 2), parse_units("kg"))
