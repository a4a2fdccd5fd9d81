"""Operators that expressions are built from.

An :class:`Operator` pairs a JAX function with its SymPy counterpart, its arity and its
complexity. An :class:`OperatorSet` is the ordered tuple of operators a search uses; an
operator's position in the set fixes its integer code in the array encoding of expressions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy

# Node codes below the operators' codes.
PAD = 0
VAR = 1
CONST = 2
FIRST_OP = 3


class Operator(eqx.Module):
    """One operator: a JAX function of one or two arrays and its SymPy form.

    Args:
        name: short name used in readable strings (``"sin"``, ``"+"``).
        arity: 1 (unary) or 2 (binary).
        fn: elementwise JAX function, ``fn(a)`` or ``fn(a, b)``. Invalid results (NaN/inf) are
            allowed: an expression that produces one is given an infinite loss.
        sympy_fn: the same function on SymPy expressions; defaults to an undefined SymPy
            function named ``name``.
        complexity: cost of one node of this operator in the complexity measure.

    Example:
        ```python
        sinc = Operator("sinc", 1, jnp.sinc, sympy_fn=lambda a: sympy.sinc(sympy.pi * a))
        ```
    """

    name: str = eqx.field(static=True)
    arity: int = eqx.field(static=True)
    fn: Callable = eqx.field(static=True)
    sympy_fn: Callable = eqx.field(static=True)
    complexity: int = eqx.field(static=True)

    def __init__(
        self,
        name: str,
        arity: int,
        fn: Callable,
        sympy_fn: Callable | None = None,
        complexity: int = 1,
    ):
        if arity not in (1, 2):
            raise ValueError(f"Operator {name!r}: arity must be 1 or 2, got {arity}.")
        if not callable(fn):
            raise TypeError(
                f"Operator {name!r}: `fn` must be a JAX function of {arity} array(s), got "
                f"{type(fn).__name__}."
            )
        _check_jax_function(name, arity, fn)
        self.name = name
        self.arity = arity
        self.fn = fn
        self.sympy_fn = sympy_fn if sympy_fn is not None else sympy.Function(name)
        self.complexity = int(complexity)


def _check_jax_function(name: str, arity: int, fn: Callable) -> None:
    """Trace ``fn`` abstractly: it must map float arrays to a float array of the same shape."""
    probe = jax.ShapeDtypeStruct((3,), jnp.float32)
    try:
        out = jax.eval_shape(fn, *([probe] * arity))
    except Exception as err:  # the user's function failed to trace: say so and why
        raise TypeError(
            f"Operator {name!r} is not a JAX function of {arity} array(s): tracing it with a "
            f"float32 array of shape (3,) failed with {type(err).__name__}: {err}. Write it "
            f"with jax.numpy (e.g. `lambda a: jnp.sin(a) / a`)."
        ) from err
    if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != (3,):
        raise TypeError(
            f"Operator {name!r} must be elementwise: for inputs of shape (3,) it returned "
            f"{getattr(out, 'shape', type(out).__name__)}."
        )


def _sym_sqrt(a):
    return sympy.sqrt(a)


_BUILTIN: dict[str, tuple[int, Callable, Callable, int]] = {
    "+": (2, jnp.add, lambda a, b: a + b, 1),
    "-": (2, jnp.subtract, lambda a, b: a - b, 1),
    "*": (2, jnp.multiply, lambda a, b: a * b, 1),
    "/": (2, jnp.divide, lambda a, b: a / b, 1),
    "pow": (2, jnp.power, lambda a, b: a**b, 1),
    "neg": (1, jnp.negative, lambda a: -a, 1),
    "sqrt": (1, jnp.sqrt, _sym_sqrt, 1),
    "exp": (1, jnp.exp, sympy.exp, 1),
    "log": (1, jnp.log, sympy.log, 1),
    "sin": (1, jnp.sin, sympy.sin, 1),
    "cos": (1, jnp.cos, sympy.cos, 1),
    "tanh": (1, jnp.tanh, sympy.tanh, 1),
    "abs": (1, jnp.abs, sympy.Abs, 1),
    "square": (1, jnp.square, lambda a: a**2, 1),
    "cube": (1, lambda a: a * a * a, lambda a: a**3, 1),
    "inv": (1, jnp.reciprocal, lambda a: 1 / a, 1),
}
_ALIASES = {"add": "+", "sub": "-", "mul": "*", "div": "/", "**": "pow", "^": "pow"}

BUILTIN_OPERATORS = tuple(_BUILTIN)


def builtin(name: str) -> Operator:
    """The built-in operator called ``name`` (``+ - * / pow neg sqrt exp log sin cos tanh abs
    square cube inv``; ``add sub mul div`` are accepted too)."""
    key = _ALIASES.get(name, name)
    if key not in _BUILTIN:
        raise ValueError(
            f"Unknown operator {name!r}. Built-in operators: {', '.join(BUILTIN_OPERATORS)}. "
            f"For anything else pass an `Operator(name, arity, jax_fn, sympy_fn)`."
        )
    arity, fn, sfn, cx = _BUILTIN[key]
    return Operator(key, arity, fn, sfn, cx)


class OperatorSet(eqx.Module):
    """The ordered operators of a search. Code ``FIRST_OP + i`` means ``operators[i]``.

    Args:
        operators: operators or built-in names, unary and binary mixed.

    Example:
        ```python
        ops = OperatorSet(["+", "-", "*", "/", "sin", "exp"])
        ```
    """

    operators: tuple[Operator, ...] = eqx.field(static=True)

    def __init__(self, operators: Sequence[Operator | str | Callable]):
        ops = []
        for op in operators:
            if isinstance(op, Operator):
                ops.append(op)
            elif isinstance(op, str):
                ops.append(builtin(op))
            elif callable(op):
                name = getattr(op, "__name__", "f")
                ops.append(Operator(name, 1, op))
            else:
                raise TypeError(
                    f"Operators must be names like '+' or 'sin', `Operator` objects or JAX "
                    f"functions; got {type(op).__name__}: {op!r}."
                )
        names = [o.name for o in ops]
        if len(set(names)) != len(names):
            raise ValueError(f"Operator names must be unique, got {names}.")
        if not any(o.arity == 2 for o in ops):
            raise ValueError(
                "At least one binary operator is needed (e.g. '+' or '*'), got only unary "
                f"ones: {names}."
            )
        self.operators = tuple(ops)

    def __len__(self) -> int:
        return len(self.operators)

    @property
    def num_codes(self) -> int:
        return FIRST_OP + len(self.operators)

    def arity_table(self) -> np.ndarray:
        """Arity of each node code (PAD, VAR, CONST have arity 0)."""
        return np.array([0, 0, 0] + [o.arity for o in self.operators], dtype=np.int32)

    def complexity_table(self) -> np.ndarray:
        """Complexity of each node code (variables and constants count 1)."""
        return np.array([0, 1, 1] + [o.complexity for o in self.operators], dtype=np.int32)

    def code(self, name: str) -> int:
        """Node code of the operator called ``name`` (aliases accepted)."""
        name = _ALIASES.get(name, name)
        for i, o in enumerate(self.operators):
            if o.name == name:
                return FIRST_OP + i
        raise KeyError(f"Operator {name!r} is not in this set ({[o.name for o in self]}).")

    def __iter__(self):
        return iter(self.operators)

    def __getitem__(self, i: int) -> Operator:
        return self.operators[i]


DEFAULT_OPERATORS = ("+", "-", "*", "/", "neg", "sqrt", "square", "exp", "log", "sin", "cos")
