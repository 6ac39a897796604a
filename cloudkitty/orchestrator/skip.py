"""Skip expressions: which rated points are dropped before storage.

An expression such as ``datapoint.qty == 0`` or
``datapoint.groupby.get('flavor') in ['m1.tiny', 'test']`` is parsed once
with :mod:`ast` and turned into a closure; nothing is ever handed to
``eval``/``exec``. Only a small subset of Python is accepted:

- constants (str, numbers, ``True``/``False``/``None``), lists, tuples, sets;
- comparisons, chained too (``0 < datapoint.qty <= 10``), ``in``/``not in``,
  ``is``/``is not``; ``and``, ``or``, ``not``; ``x if cond else y``;
- arithmetic ``+ - * / // % **`` and unary ``-``/``+``, always on
  ``Decimal`` (number constants and int/float operands become Decimals, a
  float through ``str()``);
- ``datapoint.qty``, ``.price``, ``.unit``, ``.description``, ``.groupby``,
  ``.metadata``, ``.desc``; subscripts ``m[key]`` and ``m.get(key[, default])``
  on those mappings; ``s.startswith(x)``, ``s.endswith(x)``, ``s.lower()``,
  ``s.upper()``, ``s.strip()`` on strings;
- the functions ``Decimal``, ``str``, ``len``, ``abs``, ``min``, ``max``.

Anything else (other names, attributes, calls, keyword arguments,
comprehensions, lambdas, f-strings, slices...) is refused at compile time
with :class:`InvalidSkipExpression` naming the expression and the construct.
A failure while evaluating one point raises :class:`SkipEvaluationError`.
"""

import ast
import collections.abc
import decimal
import operator

from cloudkitty import dataframe

DEFAULT_SOURCE = '[orchestrator] skip_datapoints_expression'

POINT_ATTRIBUTES = frozenset(
    ['qty', 'price', 'unit', 'description', 'groupby', 'metadata', 'desc'])
_MAPPING_METHODS = frozenset(['get'])
_STRING_METHODS = frozenset(['startswith', 'endswith', 'lower', 'upper',
                             'strip'])


class InvalidSkipExpression(ValueError):
    """The expression is not valid Python or uses a construct not allowed."""


class SkipEvaluationError(Exception):
    """Evaluating the expression on one point failed (missing key, types)."""


def _number(value):
    """Numbers as Decimal (bools and everything else unchanged)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dataframe.to_decimal(value)
    return value


def _to_decimal(value):
    if isinstance(value, str):
        value = value.strip()
    return dataframe.to_decimal(value)


def _min(*args):
    return min(*(_number(a) for a in args))


def _max(*args):
    return max(*(_number(a) for a in args))


FUNCTIONS = {
    'Decimal': (_to_decimal, 1, 1),
    'str': (str, 1, 1),
    'len': (len, 1, 1),
    'abs': (lambda value: abs(_number(value)), 1, 1),
    'min': (_min, 2, None),
    'max': (_max, 2, None),
}

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos,
          ast.Not: operator.not_}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}

_DESCRIPTIONS = {
    ast.Lambda: 'lambda', ast.ListComp: 'a list comprehension',
    ast.SetComp: 'a set comprehension', ast.DictComp: 'a dict comprehension',
    ast.GeneratorExp: 'a generator expression', ast.Dict: 'a dict literal',
    ast.JoinedStr: 'an f-string', ast.NamedExpr: 'the := operator',
    ast.Starred: 'a starred expression', ast.Slice: 'a slice',
    ast.Await: 'await', ast.Yield: 'yield', ast.YieldFrom: 'yield',
    ast.MatMult: 'the @ operator', ast.BitAnd: 'the & operator',
    ast.BitOr: 'the | operator', ast.BitXor: 'the ^ operator',
    ast.LShift: 'the << operator', ast.RShift: 'the >> operator',
    ast.Invert: 'the ~ operator',
}


class _Refused(Exception):
    def __init__(self, what, node):
        super().__init__(what)
        self.what = what
        self.node = node


def compile_expression(expression, source=DEFAULT_SOURCE):
    """Compile ``expression`` into ``predicate(datapoint) -> bool``.

    An empty or blank expression gives ``None`` (nothing is skipped).
    ``source`` says where the expression comes from, for messages (for
    example ``"metric 'cpu' skip_datapoints_expression"``). Raises
    :class:`InvalidSkipExpression`.
    """
    if expression is None or not str(expression).strip():
        return None
    if not isinstance(expression, str):
        raise InvalidSkipExpression(
            f'{source}: expected a string, got {expression!r}')
    text = expression.strip()
    try:
        tree = ast.parse(text, mode='eval')
    except SyntaxError as exc:
        raise InvalidSkipExpression(
            f'{source} {text!r} is not a valid expression: {exc.msg}') from None
    try:
        evaluate = _compile(tree.body)
    except _Refused as exc:
        where = getattr(exc.node, 'col_offset', None)
        at = f' (at column {where + 1})' if where is not None else ''
        raise InvalidSkipExpression(
            f'{source} {text!r}: {exc.what} is not allowed{at}') from None

    def predicate(point):
        try:
            return bool(evaluate(point))
        except (ArithmeticError, LookupError, TypeError, ValueError,
                AttributeError) as exc:
            raise SkipEvaluationError(
                f'{source} {text!r} failed on a point: '
                f'{exc.__class__.__name__}: {exc}') from None

    predicate.expression = text
    predicate.source = source
    return predicate


def _compile(node):
    handler = _HANDLERS.get(node.__class__)
    if handler is None:
        raise _Refused(_describe(node), node)
    return handler(node)


def _describe(node):
    if node.__class__ in _DESCRIPTIONS:
        return _DESCRIPTIONS[node.__class__]
    return f'{node.__class__.__name__} ({ast.unparse(node)!r})' \
        if isinstance(node, ast.expr) else node.__class__.__name__


def _constant(node):
    value = node.value
    if value is None or isinstance(value, (bool, str)):
        return lambda _point: value
    if isinstance(value, (int, float)):
        number = dataframe.to_decimal(value)
        return lambda _point: number
    raise _Refused(f'the constant {value!r}', node)


def _name(node):
    if node.id == 'datapoint':
        return lambda point: point
    if node.id in FUNCTIONS:
        raise _Refused(f'{node.id!r} without a call', node)
    raise _Refused(f'the name {node.id!r} (only datapoint is known)', node)


def _attribute(node):
    if not (isinstance(node.value, ast.Name) and node.value.id == 'datapoint'):
        raise _Refused(f'the attribute {ast.unparse(node)!r}', node)
    if node.attr not in POINT_ATTRIBUTES:
        raise _Refused(f'the attribute datapoint.{node.attr} (known: '
                       f'{", ".join(sorted(POINT_ATTRIBUTES))})', node)
    name = node.attr
    return lambda point: getattr(point, name)


def _sequence(factory):
    def build(node):
        items = [_compile(element) for element in node.elts]
        return lambda point: factory(item(point) for item in items)
    return build


def _subscript(node):
    if isinstance(node.slice, ast.Slice):
        raise _Refused('a slice', node.slice)
    container = _compile(node.value)
    key = _compile(node.slice)

    def subscript(point):
        mapping = container(point)
        if not isinstance(mapping, collections.abc.Mapping):
            raise TypeError(f'{mapping!r} is not a mapping')
        return mapping[key(point)]
    return subscript


def _call(node):
    if node.keywords:
        raise _Refused(f'keyword arguments in {ast.unparse(node)!r}', node)
    args = [_compile(arg) for arg in node.args]
    func = node.func
    if isinstance(func, ast.Name):
        if func.id not in FUNCTIONS:
            raise _Refused(f'the function {func.id!r} (known: '
                           f'{", ".join(sorted(FUNCTIONS))})', node)
        function, least, most = FUNCTIONS[func.id]
        if len(args) < least or (most is not None and len(args) > most):
            raise _Refused(f'{func.id}() with {len(args)} arguments', node)
        return lambda point: function(*(arg(point) for arg in args))
    if isinstance(func, ast.Attribute):
        return _method(node, func, args)
    raise _Refused(f'the call {ast.unparse(node)!r}', node)


def _method(node, func, args):
    name = func.attr
    target = _compile(func.value)
    if name in _MAPPING_METHODS:
        if not 1 <= len(args) <= 2:
            raise _Refused(f'.get() with {len(args)} arguments', node)

        def get(point):
            mapping = target(point)
            if not isinstance(mapping, collections.abc.Mapping):
                raise TypeError(f'.get() on {mapping!r}, not a mapping')
            return mapping.get(*(arg(point) for arg in args))
        return get
    if name in _STRING_METHODS:
        expected = 1 if name in ('startswith', 'endswith') else 0
        if len(args) != expected:
            raise _Refused(f'.{name}() with {len(args)} arguments', node)

        def string_method(point):
            value = target(point)
            if not isinstance(value, str):
                raise TypeError(f'.{name}() on {value!r}, not a string')
            return getattr(value, name)(*(arg(point) for arg in args))
        return string_method
    raise _Refused(f'the method .{name}() (known: '
                   f'{", ".join(sorted(_MAPPING_METHODS | _STRING_METHODS))})',
                   node)


def _operator(table, node, op):
    function = table.get(op.__class__)
    if function is None:
        raise _Refused(_DESCRIPTIONS.get(op.__class__,
                                         op.__class__.__name__), node)
    return function


def _binop(node):
    function = _operator(_BINARY, node, node.op)
    concatenates = isinstance(node.op, ast.Add)
    left, right = _compile(node.left), _compile(node.right)

    def arithmetic(point):
        a, b = _number(left(point)), _number(right(point))
        if isinstance(a, decimal.Decimal) and isinstance(b, decimal.Decimal):
            return function(a, b)
        if concatenates and isinstance(a, str) and isinstance(b, str):
            return a + b
        # No list repetition, no '%' string formatting: numbers only.
        raise TypeError(f'{ast.unparse(node)!r}: arithmetic needs numbers, '
                        f'got {a!r} and {b!r}')
    return arithmetic


def _unaryop(node):
    function = _operator(_UNARY, node, node.op)
    operand = _compile(node.operand)
    if isinstance(node.op, ast.Not):
        return lambda point: function(operand(point))
    return lambda point: function(_number(operand(point)))


def _boolop(node):
    values = [_compile(value) for value in node.values]
    if isinstance(node.op, ast.And):
        def all_of(point):
            result = True
            for value in values:
                result = value(point)
                if not result:
                    return result
            return result
        return all_of

    def any_of(point):
        result = False
        for value in values:
            result = value(point)
            if result:
                return result
        return result
    return any_of


def _compare(node):
    left = _compile(node.left)
    steps = [(_operator(_COMPARE, node, op), _compile(comparator))
             for op, comparator in zip(node.ops, node.comparators)]

    def compare(point):
        current = _number(left(point))
        for function, comparator in steps:
            other = _number(comparator(point))
            if not function(current, other):
                return False
            current = other
        return True
    return compare


def _ifexp(node):
    test, body, orelse = (_compile(node.test), _compile(node.body),
                          _compile(node.orelse))
    return lambda point: body(point) if test(point) else orelse(point)


_HANDLERS = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.Attribute: _attribute,
    ast.List: _sequence(list),
    ast.Tuple: _sequence(tuple),
    ast.Set: _sequence(frozenset),
    ast.Subscript: _subscript,
    ast.Call: _call,
    ast.BinOp: _binop,
    ast.UnaryOp: _unaryop,
    ast.BoolOp: _boolop,
    ast.Compare: _compare,
    ast.IfExp: _ifexp,
}


def compile_metric_predicates(metrics, default_expression):
    """Compile every skip expression of a validated metrics configuration.

    ``metrics`` maps a metric name (or the collector's key of one of the
    metric's definitions) to a definition or a list of them (each a dict
    with ``alt_name`` and optionally ``skip_datapoints_expression``), so
    both metrics.yml's form and the validated one of
    :func:`cloudkitty.collector.validate_metrics_conf` are accepted.
    Returns ``(default_predicate, {type: predicate})`` where a type is the
    definition's ``alt_name`` (or the metric name) and ``default_predicate``
    comes from ``default_expression`` (``None`` for never). Types without an
    expression of their own are absent from the mapping. Raises
    :class:`InvalidSkipExpression` naming the metric.
    """
    default = compile_expression(default_expression, DEFAULT_SOURCE)
    by_type = {}
    for name, definitions in metrics.items():
        if isinstance(definitions, collections.abc.Mapping):
            definitions = [definitions]
        for definition in definitions:
            expression = definition.get('skip_datapoints_expression')
            if expression is None or not str(expression).strip():
                continue
            type_ = definition.get('alt_name') or name
            by_type[type_] = compile_expression(
                expression,
                f"metric {name!r}: skip_datapoints_expression")
    return default, by_type
