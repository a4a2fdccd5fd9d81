"""Expressions as fixed-capacity arrays: one :class:`Expression`, or a :class:`Population`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from . import tree as T
from .evaluate import evaluate_expression, evaluate_population
from .operators import OperatorSet


class Expression(eqx.Module):
    """One symbolic expression, encoded in fixed-size arrays (see :mod:`jaxgen.symbolic.tree`).

    Calling it evaluates the expression on the rows of ``X``; it is a pytree, so it passes
    through ``jit`` and ``vmap`` (vmapping over a stack of expressions evaluates them all, though
    :class:`Population` does that faster).

    Args:
        code, arg, reg, child, constants: the encoding.
        operators: the operator set the codes refer to.
        variable_names: names of the columns of ``X``.

    Example:
        ```python
        e = Expression.from_sympy("x0 * sin(x1)", ["x0", "x1"], OperatorSet(["*", "sin"]))
        e(X); e.sympy(); e.latex(); f = jax.jit(e.to_jax())
        ```
    """

    code: Int[Array, " L"]
    arg: Int[Array, " L"]
    reg: Int[Array, " L"]
    child: Int[Array, "L 2"]
    constants: Float[Array, " K"]
    operators: OperatorSet = eqx.field(static=True)
    variable_names: tuple[str, ...] = eqx.field(static=True)

    @classmethod
    def from_tree(
        cls,
        tree: T.Tree,
        operators: OperatorSet,
        variable_names: Sequence[str],
        capacity: int = 32,
        num_constants: int = 8,
    ) -> Expression:
        """Encode a prefix tree (see :mod:`jaxgen.symbolic.tree`)."""
        code, arg, reg, child, consts = T.encode(
            [tree], capacity, num_constants, operators.arity_table()
        )
        return cls(
            jnp.asarray(code[0]),
            jnp.asarray(arg[0]),
            jnp.asarray(reg[0]),
            jnp.asarray(child[0]),
            jnp.asarray(consts[0]),
            operators,
            tuple(variable_names),
        )

    @classmethod
    def from_sympy(
        cls,
        expr,
        variable_names: Sequence[str],
        operators: OperatorSet | Sequence[str],
        capacity: int = 32,
        num_constants: int = 8,
    ) -> Expression:
        """Encode a SymPy expression (or a string SymPy parses) over ``variable_names``."""
        if not isinstance(operators, OperatorSet):
            operators = OperatorSet(operators)
        tree = T.from_sympy(expr, list(variable_names), operators)
        return cls.from_tree(tree, operators, variable_names, capacity, num_constants)

    @property
    def tree(self) -> T.Tree:
        """The prefix tree of this expression (host-side)."""
        return T.decode(
            self.code, self.arg, self.reg, self.child, self.constants,
            self.operators.arity_table(),
        )

    @property
    def size(self) -> int:
        """Number of nodes."""
        return int(np.sum(np.asarray(self.code) != 0))

    @property
    def complexity(self) -> int:
        """Sum of the node complexities (1 per node by default)."""
        return T.complexity(self.tree, self.operators.complexity_table())

    def __call__(self, X: Float[Array, "n d"]) -> Float[Array, " n"]:
        """Values on the rows of ``X`` (NaN/inf where undefined)."""
        return evaluate_expression(
            self.code, self.arg, self.reg, self.child, self.constants, X, self.operators
        )

    def sympy(self, digits: int | None = None):
        """SymPy form; constants rounded to ``digits`` significant digits when given."""
        return T.to_sympy(self.tree, self.operators, self.variable_names, digits=digits)

    def latex(self, digits: int = 4) -> str:
        """LaTeX string (through SymPy)."""
        import sympy

        return sympy.latex(self.sympy(digits=digits))

    def to_jax(self) -> Callable[[Array], Array]:
        """A plain JAX function ``f(X) -> y`` composed from the operators (no switch, no scan),
        suitable for ``jit``, ``grad`` and ``vmap``."""
        return T.to_callable(self.tree, self.operators)

    def __str__(self) -> str:
        return T.to_string(self.tree, self.operators, self.variable_names)


class Population(eqx.Module):
    """Many expressions with the same capacity, evaluated together.

    Example:
        ```python
        pop = Population.from_trees(trees, operators, capacity=32, num_constants=8)
        Y = pop.evaluate(X)            # (p, n)
        ```
    """

    code: Int[Array, "p L"]
    arg: Int[Array, "p L"]
    reg: Int[Array, "p L"]
    child: Int[Array, "p L 2"]
    constants: Float[Array, "p K"]
    operators: OperatorSet = eqx.field(static=True)

    @classmethod
    def from_trees(
        cls, trees, operators: OperatorSet, capacity: int = 32, num_constants: int = 8
    ) -> Population:
        arrays = T.encode(trees, capacity, num_constants, operators.arity_table())
        return cls(*(jnp.asarray(a) for a in arrays), operators)

    def __len__(self) -> int:
        return int(self.code.shape[0])

    def evaluate(self, X: Float[Array, "n d"], window: int = 32) -> Float[Array, "p n"]:
        """Values of every expression on the rows of ``X`` (grouped by operator)."""
        return _evaluate_jit(self, jnp.asarray(X), window)

    def expression(self, i: int, variable_names: Sequence[str]) -> Expression:
        """The ``i``-th expression as an :class:`Expression`."""
        return Expression(
            self.code[i], self.arg[i], self.reg[i], self.child[i], self.constants[i],
            self.operators, tuple(variable_names),
        )


@eqx.filter_jit
def _evaluate_jit(pop: Population, X, window):
    return evaluate_population(
        pop.code, pop.arg, pop.reg, pop.child, pop.constants, X, pop.operators, window
    )


def evaluate_many(expressions: Sequence[Expression], X) -> Array:
    """Evaluate several :class:`Expression` objects with the same shapes by stacking them."""
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *expressions)
    return jax.vmap(lambda e: e(X))(stacked)
