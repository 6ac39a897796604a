"""What the rating modules' dated rules share: hashmap mappings, pyscripts.

A dated rule is a row valid over ``[start, end)`` (no end: open), with
audit fields (``created_at``, ``created_by``, ``updated_by``) and a soft
delete (``deleted``, ``deleted_by``): a deleted rule stays readable, so
that the rules a past period was rated with can still be shown, and is no
longer applied. :class:`DatedRules` holds the rules of api.md about them:

- a new rule starts now by default; a start in the past needs ``force``;
  an end must come after the start;
- a rule that has started and has no end may only get an end, in the
  future; one that has started and has an end cannot change; one that has
  not started may change the attributes its module lists (and its start,
  in the past only with ``force``); a deleted rule cannot change;
- the list filters ``deleted``, ``start``, ``end``, ``created_by``,
  ``updated_by``, ``deleted_by``, ``description`` and ``is_active``.

:class:`Revision` is the one-row counter a module's writes increment
first: it serialises writers (whose uniqueness checks read, then write)
and tells a processor with one cheap query whether its rules changed;
:class:`RulesByStart` is the processor's side: what it loaded per period
start, kept while the counter does not move.

The errors raised are the module's own (given to :class:`DatedRules`), so
each API maps them as it maps the rest of its module's errors. Datetimes
are aware UTC outside and naive UTC in the database.
"""

import collections
import contextlib
import datetime
import threading

import sqlalchemy as sa
from sqlalchemy import orm

from cloudkitty.db import types as db_types
from cloudkitty import timeutils

#: Attributes only the data layer writes: a PUT may carry them (a whole
#: object read from the API sent back), they are ignored.
AUDIT_FIELDS = frozenset(['created_at', 'created_by', 'updated_by',
                          'deleted', 'deleted_by'])

to_db = timeutils.to_db
from_db = timeutils.from_db


def parse_date(value, what, error=ValueError):
    """An aware datetime from a datetime or ISO 8601 string (naive: UTC);
    ``None`` stays ``None``; ``error`` (a message) for anything else."""
    if value is None:
        return None
    try:
        return timeutils.parse(value)
    except ValueError:
        raise error(f'{what} {value!r} is not a date') from None


class DatedRuleColumns:
    """Mixin of a dated rule's model: validity, description, audit fields
    and soft delete (naive UTC timestamps; ``deleted`` is ``None`` while
    the rule is live)."""

    description = orm.mapped_column(sa.Text, nullable=True)
    start = orm.mapped_column(db_types.TIMESTAMP, nullable=False)
    end = orm.mapped_column(db_types.TIMESTAMP, nullable=True)
    created_at = orm.mapped_column(db_types.TIMESTAMP, nullable=False)
    created_by = orm.mapped_column(sa.String(255), nullable=True)
    updated_by = orm.mapped_column(sa.String(255), nullable=True)
    deleted = orm.mapped_column(db_types.TIMESTAMP, nullable=True)
    deleted_by = orm.mapped_column(sa.String(255), nullable=True)


class RevisionColumns:
    """Mixin of the model of a module's :class:`Revision` table."""

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True,
                                            autoincrement=False)
    revision = orm.mapped_column(sa.BigInteger, nullable=False)


def _phrase(names):
    names = list(names)
    if len(names) == 1:
        return names[0]
    return f'{", ".join(names[:-1])} and {names[-1]}'


class Revision:
    """A one-row counter (``id`` 1, ``revision``) in ``table``."""

    def __init__(self, table):
        self.table = table
        self._select = (f'SELECT {table.c.revision.name} FROM {table.name} '
                        f'WHERE {table.c.id.name} = 1')

    @contextlib.contextmanager
    def write(self, engine):
        """A write transaction on ``engine`` that first increments the
        counter, which serialises the writers (yields the connection)."""
        table = self.table
        with engine.begin() as conn:
            bumped = conn.execute(table.update().where(
                table.c.id == 1).values(revision=table.c.revision + 1))
            if not bumped.rowcount:
                # Tables made without the migration (which inserts the row).
                conn.execute(table.insert().values(id=1, revision=1))
            yield conn

    def read(self, engine):
        """The number of writes so far (0 for none), read from the
        database now.

        On the pool's DBAPI connection straight, without SQLAlchemy's
        connection, statement and result layers: of the some 0.5 ms of
        CPU a read through them costs the processor (each period and
        scope), this leaves two thirds to a half. The connection goes back
        to the pool (rolled back) as any other. A failure of the statement
        itself (not of the checkout, which raises what the pool raises)
        invalidates that connection and reads again through the engine,
        so that callers see SQLAlchemy's errors, never the driver's.
        """
        table = self.table
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._select)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except engine.dialect.loaded_dbapi.Error:
            connection.invalidate()
            with engine.connect() as conn:
                return conn.execute(sa.select(table.c.revision).where(
                    table.c.id == 1)).scalar() or 0
        finally:
            connection.close()
        return (row[0] if row else None) or 0


class DatedRules:
    """The validity and audit rules of the dated rules of ``table``.

    :param table: the rules' table (columns ``start``, ``end``,
        ``description``, ``created_by``, ``updated_by``, ``deleted``,
        ``deleted_by`` and the UUID column).
    :param uuid_column: the name of the column the API knows rules by.
    :param invalid: the module's error for a request that cannot be
        applied (a ValueError taking a message).
    :param immutable: its error for a change the rules forbid.
    :param future_changes: the attributes a rule that has not started may
        change, in the order messages name them (``start`` and ``end``
        included).
    :param what: how messages call a rule (``"rule"``, ``"script"``).
    """

    def __init__(self, table, uuid_column, invalid, immutable,
                 future_changes, what='rule'):
        self.table = table
        self.uuid_column = uuid_column
        self.invalid = invalid
        self.immutable = immutable
        self.future_changes = tuple(future_changes)
        self.what = what

    def date(self, value, what):
        """:func:`parse_date` raising the module's error."""
        return parse_date(value, what, self.invalid)

    def check_window(self, start, end, now, force):
        """A new validity ``[start, end)``: the start may be in the past
        only with ``force``; the end must come after the start."""
        if start < now and not force:
            raise self.invalid(
                f'start {start.isoformat()} is in the past (now is '
                f'{now.isoformat()}); force=true creates it anyway')
        if end is not None and end <= start:
            raise self.invalid(f'end {end.isoformat()} is not after '
                               f'start {start.isoformat()}')

    def check_update(self, current, diff, now, force=False):
        """Whether ``diff`` (attribute: new value, only real changes) may
        apply to the rule ``current`` (its dict, aware datetimes) at
        ``now``; returns the new ``(start, end)``.

        Raises the module's ``immutable`` error for a deleted rule, for a
        started rule with an end, for a started rule getting anything but
        an end, and for an attribute outside ``future_changes``; its
        ``invalid`` error for a bad window (see :meth:`check_window`: a
        start moved into the past needs ``force``) or a started rule's end
        that is not in the future.
        """
        if current.get('deleted') is not None:
            raise self.immutable(
                f'{self.what.capitalize()} {current[self.uuid_column]} is '
                f'deleted')
        if current['start'] <= now:
            since = current['start'].isoformat()
            if current['end'] is not None:
                raise self.immutable(
                    f'The {self.what} started on {since} and has an end: '
                    f'it cannot change')
            if set(diff) != {'end'}:
                raise self.immutable(
                    f'The {self.what} started on {since}: only its end may '
                    f'be set')
            if diff['end'] is None or diff['end'] <= now:
                end = diff['end'].isoformat() if diff['end'] else 'none'
                raise self.invalid(
                    f'end {end} must be in the future (now is '
                    f'{now.isoformat()})')
            return current['start'], diff['end']
        forbidden = sorted(set(diff) - set(self.future_changes))
        if forbidden:
            raise self.immutable(
                f'Only {_phrase(self.future_changes)} of a {self.what} may '
                f'change, not {", ".join(forbidden)}')
        start = diff.get('start', current['start'])
        end = diff.get('end', current['end'])
        if start is None:
            raise self.invalid('start cannot be removed')
        self.check_window(start, end, now, force or 'start' not in diff)
        return start, end

    def valid_at(self, at):
        """Conditions for a rule live and in force at ``at`` (aware or
        naive UTC): not deleted, and in force during ``at``'s second.

        Rules are in force by whole seconds: during the second ``S`` iff
        ``floor(start) <= S < floor(end)`` (or no end), ``floor`` cutting
        the fraction of a second. So a rule created (its start: now) before
        a quote is asked, on the same clock, is in force for it, even
        within the same second; an end is effective from the start of its
        second; and whether the database keeps fractions of a second (or
        truncates them, as a MariaDB ``DATETIME`` without them does)
        changes nothing. Written on the stored values (``start < S + 1 s``,
        ``end >= S + 1 s``), so that rows stored with fractions need no
        rewriting.
        """
        second = to_db(at).replace(microsecond=0)
        after = second + datetime.timedelta(seconds=1)
        columns = self.table.c
        return (columns.deleted.is_(None), columns.start < after,
                columns.end.is_(None) | (columns.end >= after))

    def live(self):
        """The condition for a rule that is not deleted."""
        return self.table.c.deleted.is_(None)

    def filter(self, query, now, deleted=False, start=None, end=None,
               created_by=None, updated_by=None, deleted_by=None,
               description=None, is_active=None):
        """``query`` restricted by the list filters of api.md.

        ``deleted``: include deleted rules. ``start``: starting at or
        after; ``end``: ending before. ``created_by``, ``updated_by``,
        ``deleted_by``: equal. ``description``: a case-insensitive
        substring. ``is_active``: ``True`` for valid ``now``, or a datetime
        (or ISO 8601 string) for valid then, and not deleted.
        """
        columns = self.table.c
        if not deleted:
            query = query.where(self.live())
        if start is not None:
            query = query.where(
                columns.start >= to_db(self.date(start, 'start')))
        if end is not None:
            query = query.where(columns.end < to_db(self.date(end, 'end')))
        for name, value in (('created_by', created_by),
                            ('updated_by', updated_by),
                            ('deleted_by', deleted_by)):
            if value is not None:
                query = query.where(columns[name] == value)
        if description:
            query = query.where(columns.description.icontains(
                description, autoescape=True))
        if is_active:
            at = now if is_active is True else self.date(
                is_active, 'is_active')
            query = query.where(*self.valid_at(at))
        return query

    def soft_delete(self, conn, uuid_value, now, deleted_by=None):
        """Mark the live rule ``uuid_value`` deleted at ``now``; whether
        there was one."""
        columns = self.table.c
        updated = conn.execute(self.table.update().where(
            columns[self.uuid_column] == uuid_value,
            columns.deleted.is_(None)).values(
                deleted=to_db(now), deleted_by=deleted_by))
        return bool(updated.rowcount)


class RulesByStart:
    """What a rating module loads for a period start (its rules, its
    scripts), kept while the module's revision counter does not move.

    ``revision()`` reads the counter, ``load(start)`` the rules valid at
    ``start``; values loaded must compare equal when the rules are the
    same. ``adopt(value, known)``, if given, is called with a value just
    loaded that equals none of those kept, and those: what it can take
    from them (the hashmap's compiled services). Thread-safe.
    """

    def __init__(self, revision, load, size=16, adopt=None):
        self._read_revision = revision
        self._load = load
        self._adopt = adopt
        self._size = size
        self._lock = threading.Lock()
        self._revision = None
        self._by_start = collections.OrderedDict()
        self._current = None                         # (start, value)

    def at(self, start):
        """The rules of a period starting at ``start`` (a datetime).

        One query tells whether the rules changed since the last call; if
        not and ``start`` was asked for before, nothing more is read.
        """
        revision = self._read_revision()
        with self._lock:
            if revision != self._revision:
                # Kept, not dropped: a reload that finds equal rules reuses
                # one of them (and whatever it memoised).
                known = list(self._by_start.values())
                self._by_start.clear()
                self._revision = revision
            else:
                cached = self._by_start.get(start)
                if cached is not None:
                    self._by_start.move_to_end(start)
                    return cached
                known = list(self._by_start.values())
        loaded = self._load(start)
        for value in known:
            if value == loaded:
                loaded = value
                break
        else:
            if self._adopt is not None and known:
                self._adopt(loaded, known)
        with self._lock:
            if revision == self._revision:
                self._by_start[start] = loaded
                while len(self._by_start) > self._size:
                    self._by_start.popitem(last=False)
        return loaded

    def reload(self, start):
        """Make the rules valid at ``start`` current (see :meth:`current`)."""
        self._current = (start, self.at(start))

    def current(self, start):
        """The rules of ``start``: without any query when ``start`` is the
        current one (as after :meth:`reload`, which a worker calls once
        per period before rating)."""
        current = self._current
        if current is not None and current[0] == start:
            return current[1]
        value = self.at(start)
        self._current = (start, value)
        return value
