"""Rated data: the points' sums by UTC month, scope and type.

``rated_monthly_totals`` holds, for each (month, scope, type), the sums of
the month's daily rows, which every write keeps in step from now on (see
``RatedMonthlyTotal`` in ``cloudkitty.storage.v2.sqlalchemy.models``).
The rows of the data already stored are summed here from
``rated_daily_totals``, in Python on every database (exact decimal sums,
SQLite's decimal text included), reading the daily rows once in key order:
a few million rows for a year of a large cloud.

Revision ID: 0012
Revises: 0011
"""

import decimal

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'

# Sums of a month's daily sums (31 at most, each as wide as a quantity):
# two digits wider than those.
_SUM = sa.Numeric(50, 28).with_variant(sa.String(80), 'sqlite')
# Rows inserted per statement.
_CHUNK = 5000


def _key_string(length):
    return sa.String(length).with_variant(
        postgresql.VARCHAR(length, collation='C'), 'postgresql').with_variant(
        mysql.VARCHAR(length, charset='utf8mb4',
                      collation='utf8mb4_nopad_bin'), 'mysql', 'mariadb')


def _monthly_rows(bind, daily):
    """The rows of ``rated_monthly_totals`` of the ``daily`` table's rows,
    summed exactly; yields dicts."""
    context = decimal.Context(prec=80)
    sums = {}
    rows = bind.execute(sa.select(
        daily.c.scope_id, daily.c.type, daily.c.day, daily.c.qty,
        daily.c.price, daily.c.totals, daily.c.points),
        execution_options={'yield_per': _CHUNK})
    for scope_id, type_, day, qty, price, totals, points in rows:
        key = (day.replace(day=1), scope_id, type_)
        found = sums.get(key)
        qty, price = decimal.Decimal(str(qty)), decimal.Decimal(str(price))
        if found is None:
            sums[key] = [qty, price, totals, points]
        else:
            found[0] = context.add(found[0], qty)
            found[1] = context.add(found[1], price)
            found[2] += totals
            found[3] += points
    # SQLite's column is text.
    money = str if bind.dialect.name == 'sqlite' else decimal.Decimal
    for (month, scope_id, type_), (qty, price, totals, points) in sorted(
            sums.items()):
        yield {'month': month, 'scope_id': scope_id, 'type': type_,
               'qty': money(qty), 'price': money(price), 'totals': totals,
               'points': points}


def upgrade():
    monthly = op.create_table(
        'rated_monthly_totals',
        sa.Column('month', sa.Date, nullable=False),
        sa.Column('scope_id', _key_string(255), nullable=False),
        sa.Column('type', _key_string(255), nullable=False),
        sa.Column('qty', _SUM, nullable=False),
        sa.Column('price', _SUM, nullable=False),
        sa.Column('totals', sa.BigInteger, nullable=False),
        sa.Column('points', sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint('month', 'scope_id', 'type',
                                name='pk_rated_monthly_totals'),
    )
    daily = sa.table(
        'rated_daily_totals', sa.column('scope_id'), sa.column('type'),
        sa.column('day', sa.Date), sa.column('qty'), sa.column('price'),
        sa.column('totals'), sa.column('points'))
    bind = op.get_bind()
    chunk = []
    for row in _monthly_rows(bind, daily):
        chunk.append(row)
        if len(chunk) == _CHUNK:
            bind.execute(monthly.insert(), chunk)
            chunk = []
    if chunk:
        bind.execute(monthly.insert(), chunk)


def downgrade():
    op.drop_table('rated_monthly_totals')
