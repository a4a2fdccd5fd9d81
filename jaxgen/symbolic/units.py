"""Units: dimensional consistency of expressions and Buckingham-pi reduction.

Units are exponent vectors over base units (``m s kg T V``, or any symbols the user writes):
``"m s^-2 kg"`` is ``{m: 1, s: -2, kg: 1}``; ``"1"`` or ``""`` is dimensionless.

* :func:`expression_dimensions` propagates units through a tree. Free constants may carry any
  units (as in PySR's dimensional constraints), so only structural violations count: adding
  metres to seconds, or taking ``exp`` of a length.
* :func:`buckingham_pi` finds dimensionless groups of the inputs and a product of inputs with
  the output's units (Buckingham 1914), the reduction AI Feynman applies first (Udrescu &
  Tegmark 2020, "AI Feynman: a physics-inspired method for symbolic regression"):
  ``y = prefactor(x) * g(pi_1(x), ..., pi_k(x))`` with ``k = d - rank``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np
import sympy

from .operators import CONST, FIRST_OP, VAR, OperatorSet
from .tree import Tree

BASE_UNITS = ("m", "s", "kg", "T", "V")
_WILD = None  # the units of a free constant: compatible with anything


def parse_units(spec, base: Sequence[str] = BASE_UNITS) -> np.ndarray:
    """Exponent vector of a units spec: a string like ``"m s^-2 kg"`` or a numeric vector."""
    if isinstance(spec, str):
        out = np.zeros(len(base))
        text = spec.strip()
        if text in ("", "1"):
            return out
        for tok in text.split():
            m = re.fullmatch(r"([A-Za-z_]+)(?:\^?(-?\d+(?:\.\d+)?))?", tok)
            if m is None or m.group(1) not in base:
                raise ValueError(
                    f"Cannot read the unit {tok!r} in {spec!r}; write units as space-separated "
                    f"`symbol^exponent` with symbols from {tuple(base)} (e.g. 'm s^-2 kg'), or "
                    f"give exponent vectors of length {len(base)}."
                )
            out[base.index(m.group(1))] += float(m.group(2)) if m.group(2) else 1.0
        return out
    vec = np.asarray(spec, np.float64).ravel()
    if vec.shape != (len(base),):
        raise ValueError(
            f"A units vector must have {len(base)} exponents (one per base unit {tuple(base)}), "
            f"got {vec.shape[0]}: {spec!r}."
        )
    return vec


def units_matrix(units: Sequence, num_vars: int, base: Sequence[str] = BASE_UNITS) -> np.ndarray:
    """``(num_vars, num_base)`` exponents; checks there is one entry per input column."""
    if len(units) != num_vars:
        raise ValueError(
            f"`units` must give one entry per column of X: X has {num_vars} columns, `units` "
            f"has {len(units)} entries."
        )
    return np.stack([parse_units(u, base) for u in units]) if num_vars else np.zeros((0, len(base)))


def expression_dimensions(tree: Tree, D: np.ndarray, operators: OperatorSet):
    """Units of a tree's value, ``None`` for "any" (a free constant), or ``False`` if the tree
    is dimensionally inconsistent."""
    arity = operators.arity_table()
    pos = 0
    bad = False

    def same(a, b):
        return a is _WILD or b is _WILD or np.allclose(a, b)

    def dimensionless(a):
        return a is _WILD or np.allclose(a, 0)

    def rec():
        nonlocal pos, bad
        c, v = tree[pos]
        pos += 1
        if c == VAR:
            return D[int(v)]
        if c == CONST:
            return _WILD
        name = operators[c - FIRST_OP].name
        if arity[c] == 1:
            a = rec()
            if name in ("neg", "abs"):
                return a
            scale = {"sqrt": 0.5, "square": 2.0, "cube": 3.0, "inv": -1.0}.get(name)
            if scale is not None:
                return a if a is _WILD else a * scale
            if not dimensionless(a):
                bad = True
            return np.zeros(D.shape[1])
        start_b = None
        a = rec()
        start_b = pos
        b = rec()
        if name in ("+", "-"):
            if not same(a, b):
                bad = True
            return b if a is _WILD else a
        if name in ("*", "/"):
            if a is _WILD or b is _WILD:
                return _WILD
            return a + b if name == "*" else a - b
        if name == "pow":
            if not dimensionless(b):
                bad = True
                return _WILD
            if a is _WILD or np.allclose(a, 0):
                return a
            if tree[start_b][0] == CONST and pos == start_b + 1:
                return a * tree[start_b][1]
            bad = True  # a dimensional base to a non-constant power
            return _WILD
        # custom binary operators need dimensionless operands
        if not (dimensionless(a) and dimensionless(b)):
            bad = True
        return np.zeros(D.shape[1])

    out = rec()
    return False if bad else out


def dimension_penalty_fn(D: np.ndarray, out_units: np.ndarray | None, operators, penalty: float):
    """``tree -> penalty`` (0 when consistent with the inputs' and the output's units)."""

    def fn(tree: Tree) -> float:
        dims = expression_dimensions(tree, D, operators)
        if dims is False:
            return penalty
        if out_units is not None and dims is not _WILD and not np.allclose(dims, out_units):
            return penalty
        return 0.0

    return fn


@dataclasses.dataclass(frozen=True)
class PiReduction:
    """``y = prod(x ** prefactor) * g(pi)`` with ``pi_j = prod(x ** groups[j])``.

    Attributes:
        groups: ``(k, d)`` rational exponents of the dimensionless groups.
        prefactor: ``(d,)`` exponents of the product with the output's units.
    """

    groups: np.ndarray
    prefactor: np.ndarray

    def transform(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dimensionless inputs ``(n, k)`` (a column of ones when ``k == 0``) and target."""
        with np.errstate(all="ignore"):
            logx = np.log(np.abs(X))
            sign = np.sign(X)
            pre = _signed_power(logx, sign, self.prefactor)
            if len(self.groups):
                P = np.stack([_signed_power(logx, sign, g) for g in self.groups], axis=1)
            else:
                P = np.ones((X.shape[0], 1))
        return P, y / pre

    def expand(self, tree: Tree, operators: OperatorSet) -> tuple[Tree, OperatorSet]:
        """Tree over the original inputs for ``prefactor * g`` where ``tree`` is ``g`` over the
        groups; the operator set gains ``*``, ``/`` and ``pow`` if it lacked them."""
        names = [o.name for o in operators]
        extra = [n for n in ("*", "pow") if n not in names]
        ops = OperatorSet(list(operators) + extra) if extra else operators
        mul, pw = ops.code("*"), ops.code("pow")

        def monomial(exps) -> Tree:
            factors: list[Tree] = []
            for i, e in enumerate(exps):
                if e == 0:
                    continue
                if e == 1:
                    factors.append(((VAR, i),))
                else:
                    factors.append(((pw, 0.0), (VAR, i), (CONST, float(e))))
            if not factors:
                return ((CONST, 1.0),)
            out = factors[0]
            for f in factors[1:]:
                out = ((mul, 0.0),) + out + f
            return out

        body: list = []
        for c, v in tree:
            if c == VAR:
                body.extend(monomial(self.groups[int(v)]) if len(self.groups) else ((CONST, 1.0),))
            else:
                body.append((c, v))
        pre = monomial(self.prefactor)
        if pre == ((CONST, 1.0),):
            return tuple(body), ops
        return ((mul, 0.0),) + pre + tuple(body), ops


def _signed_power(logx, sign, exps):
    out = np.exp(logx @ exps)
    # integer exponents keep the sign of negative inputs
    for i, e in enumerate(exps):
        if e != 0 and float(e).is_integer() and int(e) % 2:
            out = out * sign[:, i]
    return out


def buckingham_pi(D: np.ndarray, out_units: np.ndarray) -> PiReduction:
    """Dimensionless groups of inputs with units ``D`` ``(d, b)`` and a monomial with the
    output's units.

    Raises:
        ValueError: if no product of the inputs has the output's units (the units given are
            inconsistent, or a dimensional constant is missing from the inputs).
    """
    A = sympy.Matrix(np.round(D.T * 6).astype(int).tolist()) / 6  # exact rationals
    null = A.nullspace()
    groups = []
    for v in null:
        den = sympy.ilcm(*[sympy.fraction(x)[1] for x in v])
        vi = np.array([float(x * den) for x in v])
        g = np.gcd.reduce(np.abs(vi[vi != 0]).astype(int)) if np.any(vi) else 1
        vi = vi / g
        if vi[np.nonzero(vi)[0][-1]] < 0:
            vi = -vi
        groups.append(vi)
    b = sympy.Matrix([sympy.Rational(round(x * 6), 6) for x in out_units])
    try:
        sol, params = A.gauss_jordan_solve(b)
    except ValueError as err:
        raise ValueError(
            "No product of the inputs has the output's units, so the problem cannot be made "
            "dimensionless. Check the units, or add the missing dimensional constants (e.g. G, "
            "c, k_B) as input columns; or use dimensional_analysis='penalty'."
        ) from err
    sol = sol.subs({p: 0 for p in params})
    pre = np.array([float(x) for x in sol])
    return PiReduction(np.array(groups).reshape(len(groups), D.shape[0]), pre)
