"""Quantities: the exact arithmetic of factor, offset and mutate.

``factor`` and ``offset`` are kept as :class:`fractions.Fraction` (``"1/3"``
stays one third), and ``collected * factor + offset`` is computed as one
rational number. Its decimal form is exact whenever it has one (any factor
whose denominator has no prime factor but 2 and 5, e.g. ``1/1048576``);
otherwise it is rounded once, half-even, to :data:`QTY_PRECISION`
significant digits.

Contents: :func:`make_converter`, :func:`make_mutator`, :func:`time_keys`
and the decimal contexts :data:`EXACT` and :data:`ROUNDED` that collectors
aggregating quantities use.
"""

import decimal

from cloudkitty.collector import metrics_conf
from cloudkitty import dataframe

#: Significant digits of a converted quantity that has no exact decimal form.
QTY_PRECISION = 28

TIME_KEYS = ('week_of_the_year', 'day_of_the_year', 'month', 'year')

# Enough digits for any exact product or sum of the quantities we meet;
# decimal's cost follows the digits of the operands, not this limit.
EXACT = decimal.Context(prec=1000, rounding=decimal.ROUND_HALF_EVEN,
                        Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
ROUNDED = decimal.Context(prec=QTY_PRECISION,
                          rounding=decimal.ROUND_HALF_EVEN,
                          Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _only_2_and_5(number):
    for prime in (2, 5):
        while number % prime == 0:
            number //= prime
    return number == 1


def make_converter(factor=1, offset=0):
    """Return ``f(qty) -> qty * factor + offset`` over Decimals.

    ``factor`` and ``offset`` are anything :data:`METRIC_BASE_SCHEMA`
    accepts. The result is exact when it has a finite decimal form, else
    rounded half-even to :data:`QTY_PRECISION` significant digits.
    """
    factor, offset = metrics_conf.to_fraction(factor), metrics_conf.to_fraction(offset)
    if factor == 1 and offset == 0:
        return dataframe.to_decimal
    # qty * fn/fd + on/od == (qty * fn*od + on*fd) / (fd*od)
    multiplier = decimal.Decimal(factor.numerator * offset.denominator)
    addend = decimal.Decimal(offset.numerator * factor.denominator)
    divisor = factor.denominator * offset.denominator
    divisor_dec = decimal.Decimal(divisor)
    exact_division = _only_2_and_5(divisor)

    def convert(qty):
        numerator = EXACT.add(EXACT.multiply(dataframe.to_decimal(qty),
                                             multiplier), addend)
        if divisor == 1:
            return numerator
        context = EXACT if exact_division else ROUNDED
        return context.divide(numerator, divisor_dec)

    return convert


def _ceil(qty):
    return qty.to_integral_value(rounding=decimal.ROUND_CEILING)


def _floor(qty):
    return qty.to_integral_value(rounding=decimal.ROUND_FLOOR)


_ZERO, _ONE = decimal.Decimal(0), decimal.Decimal(1)


def make_mutator(mutate='NONE', mutate_map=None):
    """Return the ``f(Decimal) -> Decimal`` of a ``mutate`` mode."""
    if mutate == 'NUMBOOL':
        return lambda qty: _ONE if qty != 0 else _ZERO
    if mutate == 'NOTNUMBOOL':
        return lambda qty: _ZERO if qty != 0 else _ONE
    if mutate == 'FLOOR':
        return _floor
    if mutate == 'CEIL':
        return _ceil
    if mutate == 'MAP':
        mapping = metrics_conf.mutate_map(mutate_map or {})
        return lambda qty: mapping.get(qty, _ZERO)
    return None


def time_keys(start):
    """The four time groupby keys of the period starting at ``start``."""
    return {
        'week_of_the_year': start.strftime('%U'),
        'day_of_the_year': str(start.timetuple().tm_yday),
        'month': str(start.month),
        'year': str(start.year),
    }
