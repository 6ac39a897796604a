"""Copy rows of one upstream table into one of ours, idempotently.

A :class:`TableCopy` names an upstream table, ours, the columns to copy
(upstream name -> our name, with an optional conversion) and the columns
that identify a row on both sides. :func:`copy_table` reads every upstream
row and, for each, inserts it when our table has no row with that key,
updates ours when it differs, and leaves it alone when it is equal: a
second run changes nothing, and a run resumed after a kill finishes the
job. ``identity`` columns (a rule's UUID) must agree when the key (its
integer id) is found in our table already: a different rule holding that
id is a conflict the import refuses to overwrite.
"""

import dataclasses

import sqlalchemy as sa

from cloudkitty import importer


@dataclasses.dataclass(frozen=True)
class TableCopy:
    """What to copy from upstream table ``source`` into our ``target``.

    :param source: upstream's table name.
    :param target: our :class:`sqlalchemy.Table`.
    :param columns: ``{upstream column: our column}``.
    :param key: our columns identifying a row (looked up before writing).
    :param identity: our columns that must be equal when the key is found
        (else :class:`~cloudkitty.importer.ImportConflict`).
    :param convert: ``{our column: function(upstream value) -> value}``.
    :param where: an optional function of upstream's table returning the
        WHERE clause of the rows to copy.
    """

    source: str
    target: sa.Table
    columns: dict
    key: tuple
    identity: tuple = ()
    convert: dict = dataclasses.field(default_factory=dict)
    where: object = None

    def upstream_table(self):
        """Upstream's table, its columns typed as ours (SQLite hands back
        text for dates otherwise); a converted column keeps its raw
        value."""
        return sa.table(self.source, *(
            sa.column(name, None if target in self.convert
                      else self.target.c[target].type)
            for name, target in self.columns.items()))


@dataclasses.dataclass
class Counts:
    """Rows inserted, updated and found equal by one :func:`copy_table`."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self):
        return (f'{self.inserted} inserted, {self.updated} updated, '
                f'{self.unchanged} unchanged')


def read_rows(upstream_conn, copy):
    """Upstream's rows of ``copy.source`` as dicts of our column names,
    converted, in key order."""
    table = copy.upstream_table()
    query = sa.select(table)
    if copy.where is not None:
        query = query.where(copy.where(table))
    rows = []
    for row in upstream_conn.execute(query).mappings():
        ours = {}
        for name, target in copy.columns.items():
            value = row[name]
            convert = copy.convert.get(target)
            ours[target] = convert(value) if convert else value
        rows.append(ours)
    rows.sort(key=lambda row: tuple(str(row[k]) for k in copy.key))
    return rows


def copy_table(upstream_conn, conn, copy):
    """Copy upstream's rows of ``copy`` through our connection ``conn``
    (inside the caller's transaction); return the :class:`Counts`."""
    counts = Counts()
    target = copy.target
    for row in read_rows(upstream_conn, copy):
        where = [target.c[name] == row[name] for name in copy.key]
        found = conn.execute(sa.select(
            *(target.c[name] for name in row)).where(*where)
        ).mappings().first()
        if found is None:
            conn.execute(target.insert().values(**row))
            counts.inserted += 1
            continue
        for name in copy.identity:
            if found[name] != row[name]:
                raise importer.ImportConflict(
                    f'{target.name}: our row with '
                    f'{_describe(copy.key, row)} has {name} '
                    f'{found[name]!r}, upstream has {row[name]!r}; refusing '
                    f'to overwrite a row that is not upstream\'s')
        # Equality holds across types here: Decimal('1.50') == 1.5,
        # True == 1 (MariaDB's booleans), equal naive datetimes.
        if any(found[name] != value for name, value in row.items()):
            conn.execute(target.update().where(*where).values(**row))
            counts.updated += 1
        else:
            counts.unchanged += 1
    return counts


def advance_sequence(conn, table):
    """After ids were inserted explicitly, make PostgreSQL's sequence of
    ``table.id`` hand out ids above them (MariaDB and SQLite do it
    themselves)."""
    if conn.dialect.name != 'postgresql':
        return
    conn.execute(sa.text(
        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
        f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"))


def _describe(key, row):
    return ', '.join(f'{name} {row[name]!r}' for name in key)
