"""Upstream's rated data in its v1 SQL storage (``rated_data_frames``).

One row per rated point: ``tenant_id`` (the scope), ``begin``, ``end``,
``unit``, ``qty`` (``NUMERIC(15, 5)``), ``res_type`` (the type), ``rate``
(the price, a float) and ``desc`` (the point's description, JSON). v1 had
no groupby/metadata split: the scope becomes the point's one groupby key,
the description its metadata.
"""

import json

import sqlalchemy as sa

from cloudkitty import dataframe
from cloudkitty import importer
from cloudkitty import timeutils

_TABLE = sa.table(
    'rated_data_frames', sa.column('id', sa.Integer),
    sa.column('tenant_id', sa.String), sa.column('begin', sa.DateTime),
    sa.column('end', sa.DateTime), sa.column('unit', sa.String),
    sa.column('qty', sa.Numeric(asdecimal=True)),
    sa.column('res_type', sa.String), sa.column('rate', sa.Float),
    sa.column('desc', sa.Text))


class V1SQLSource(importer.RatedSource):
    """``rated_data_frames`` of upstream's database (``engine``, from
    :func:`cloudkitty.importer.upstream_engine`)."""

    #: Prices are floats summed by the database (see InfluxSource).
    tolerance = 1e-9

    def __init__(self, engine, scope_key='project_id'):
        self.engine = engine
        self.scope_key = scope_key

    def __str__(self):
        return f'rated_data_frames of {self.engine.url!r}'

    def _window(self, begin, end):
        return (_TABLE.c.begin >= timeutils.to_db(begin),
                _TABLE.c.begin < timeutils.to_db(end))

    def bounds(self):
        with self.engine.connect() as conn:
            first, last = conn.execute(sa.select(
                sa.func.min(_TABLE.c.begin), sa.func.max(_TABLE.c.begin))
            ).one()
        if first is None:
            return None
        return timeutils.from_db(first), timeutils.from_db(last)

    def count(self, begin, end):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(
                _TABLE).where(*self._window(begin, end))).scalar()

    def frames(self, begin, end):
        frames = {}
        query = sa.select(_TABLE).where(*self._window(begin, end)).order_by(
            _TABLE.c.begin, _TABLE.c.end, _TABLE.c.id)
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                key = (timeutils.from_db(row.begin),
                       timeutils.from_db(row.end))
                frame = frames.get(key)
                if frame is None:
                    frame = frames[key] = dataframe.DataFrame(*key)
                groupby = {self.scope_key: row.tenant_id} if (
                    row.tenant_id) else {}
                frame.add_point(dataframe.DataPoint(
                    row.unit, row.qty, row.rate, groupby,
                    json.loads(row.desc or '{}')), row.res_type)
        return list(frames.values())

    def totals(self, begin, end):
        query = sa.select(
            _TABLE.c.tenant_id, _TABLE.c.res_type, sa.func.sum(_TABLE.c.qty),
            sa.func.sum(_TABLE.c.rate)).where(
                *self._window(begin, end)).group_by(
                    _TABLE.c.tenant_id, _TABLE.c.res_type)
        with self.engine.connect() as conn:
            return {(scope or None, type_): (dataframe.to_decimal(qty),
                                             dataframe.to_decimal(price))
                    for scope, type_, qty, price in conn.execute(query)}
