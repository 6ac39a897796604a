"""Import an upstream CloudKitty deployment: rules, states, rated data.

``cloudkitty-import-upstream`` (:mod:`cloudkitty.cli.import_upstream`)
reads upstream's database and rated-data storage and writes ours:

- :mod:`.rules`: hashmap services, fields, groups, mappings and thresholds,
  pyscripts, with their ids;
- :mod:`.states`: module states, scope states, pending reprocessing tasks,
  collector mappings;
- :mod:`.rated`: rated data, period by period through our storage backend,
  read from a :class:`RatedSource` (:mod:`.influx`: InfluxDB 1.x,
  upstream's default; :mod:`.v1sql`: upstream's v1 ``rated_data_frames``);
- :mod:`.verify`: totals per scope, type and month on both sides;
- :mod:`.rows`: the idempotent copy of one upstream table into one of ours,
  which rules and states are made of.

Upstream is only read: its engine (:func:`upstream_engine`) opens every
session read-only. Every step is idempotent, so a run resumed after a kill,
or run twice, stores nothing twice.

:class:`RatedSource` is the extension point for upstream's other storage
backends (Elasticsearch/OpenSearch, Loki): a class implementing it, added
to :data:`cloudkitty.importer.rated.SOURCES`, is all the command needs.
"""

import abc

import sqlalchemy as sa
from sqlalchemy import event

from cloudkitty import db


class ImportFailed(Exception):
    """The import cannot go on (the message says why and what to do)."""


class ImportConflict(ImportFailed):
    """Our database holds a row upstream's would overwrite."""


_READ_ONLY = {
    'postgresql': 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY',
    'mysql': 'SET SESSION TRANSACTION READ ONLY',
    'sqlite': 'PRAGMA query_only = ON',
}


def upstream_engine(url):
    """An engine on upstream's database whose sessions are all read-only
    (the database refuses any write on them).

    :raises ImportFailed: for a database other than PostgreSQL,
        MariaDB/MySQL or SQLite.
    """
    engine = db.create_engine(url)
    statement = _READ_ONLY.get(engine.dialect.name)
    if statement is None:
        raise ImportFailed(f'unsupported upstream database '
                           f'{engine.dialect.name!r}')

    @event.listens_for(engine, 'connect')
    def read_only(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
        if engine.dialect.name == 'postgresql':
            dbapi_connection.commit()
    # SQLite's transactions otherwise begin IMMEDIATE, which is a write.
    return engine.execution_options(**{db.READ_ONLY: True})


def has_table(engine, name):
    """Whether upstream's database has table ``name``."""
    return sa.inspect(engine).has_table(name)


class RatedSource(abc.ABC):
    """Upstream's rated data, as the import reads it.

    Datetimes are aware UTC; windows are ``[begin, end)`` on the start of
    the points' periods. Quantities and prices are Decimals; where upstream
    keeps floats, ``Decimal(repr(value))`` (the shortest decimal that reads
    back as the same float).
    """

    #: Relative difference allowed between a total of ours and upstream's
    #: own total of the same points (see :mod:`.verify`).
    tolerance = 0

    @abc.abstractmethod
    def bounds(self):
        """``(first period start, last period start)`` of the stored
        points, or ``None`` when there is none."""

    @abc.abstractmethod
    def count(self, begin, end):
        """The number of points of ``[begin, end)``."""

    @abc.abstractmethod
    def frames(self, begin, end):
        """The points of ``[begin, end)`` as a list of
        :class:`~cloudkitty.dataframe.DataFrame`, one per period, in
        period order; each point's scope is its ``groupby`` value of the
        scope key."""

    @abc.abstractmethod
    def totals(self, begin, end):
        """Upstream's own sums over ``[begin, end)``:
        ``{(scope_id, type): (qty, price)}`` as Decimals, computed by
        upstream's storage, not from :meth:`frames`."""
