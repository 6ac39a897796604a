"""Column types shared by the service's tables, on the three databases.

Money and quantities are ``NUMERIC`` with :data:`SCALE` decimals (exact
decimal text on SQLite, which has no decimal type: :class:`SQLiteDecimal`);
timestamps are naive UTC (:data:`TIMESTAMP`, with microseconds on MariaDB);
text keys compare byte-wise everywhere (:func:`key_string`).

Contents: :data:`SCALE`, :data:`QTY_INTEGER_DIGITS`,
:data:`PRICE_INTEGER_DIGITS`, :class:`SQLiteDecimal`, :func:`money`,
:func:`key_string`, and the types :data:`TIMESTAMP`, :data:`JSON`,
:data:`BIG_ID`, :data:`QTY`, :data:`PRICE`, :data:`SUM`,
:data:`MONTHLY_SUM`.
"""

import decimal

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql

#: Digits after the decimal point of stored quantities and prices.
SCALE = 28
#: Integer digits: quantities (bytes, seconds...) can be large; costs
#: stay below a trillion.
QTY_INTEGER_DIGITS = 20
PRICE_INTEGER_DIGITS = 12


class SQLiteDecimal(sa.types.TypeDecorator):
    """Decimal stored as exact text on SQLite, which has no decimal type.

    Values are rounded half-up to ``scale`` digits and refused beyond
    ``precision``, as ``NUMERIC(precision, scale)`` does elsewhere.
    """

    impl = sa.String(80)
    cache_ok = True

    def __init__(self, precision, scale):
        super().__init__()
        self.precision = precision
        self.scale = scale
        self._quantum = decimal.Decimal(1).scaleb(-scale)
        self._limit = decimal.Decimal(10) ** (precision - scale)

    def to_text(self, value):
        """Return the stored text of a Decimal (``ValueError`` if too big)."""
        text = str(value)
        dot = text.find('.')
        # Small numbers may be written 1E-30: let quantize() tell.
        if 'E-' in text or (dot >= 0 and len(text) - dot - 1 > self.scale):
            value = value.quantize(self._quantum, decimal.ROUND_HALF_UP,
                                   context=_WIDE)
            text = str(value)
        if value.copy_abs() >= self._limit:
            raise ValueError(f'{value} does not fit NUMERIC('
                             f'{self.precision}, {self.scale})')
        return text

    def process_bind_param(self, value, dialect):
        return None if value is None else self.to_text(
            decimal.Decimal(value))

    def process_result_value(self, value, dialect):
        return None if value is None else decimal.Decimal(value)


_WIDE = decimal.Context(prec=100)


def money(integer_digits):
    """``NUMERIC(integer_digits + SCALE, SCALE)``, exact text on SQLite."""
    precision = integer_digits + SCALE
    return sa.Numeric(precision, SCALE, asdecimal=True).with_variant(
        SQLiteDecimal(precision, SCALE), 'sqlite')


def key_string(length):
    """A string compared byte-wise on every database."""
    return sa.String(length).with_variant(
        postgresql.VARCHAR(length, collation='C'), 'postgresql').with_variant(
        mysql.VARCHAR(length, charset='utf8mb4',
                      collation='utf8mb4_nopad_bin'), 'mysql', 'mariadb')


TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6),
                                       'mysql', 'mariadb')
JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
QTY = money(QTY_INTEGER_DIGITS)
PRICE = money(PRICE_INTEGER_DIGITS)
#: Sums of quantities or of prices: as wide as a quantity.
SUM = money(QTY_INTEGER_DIGITS)
#: Sums of the daily sums of a month (31 at most): two digits wider.
MONTHLY_SUM = money(QTY_INTEGER_DIGITS + 2)
