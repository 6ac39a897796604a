"""``cloudkitty-import-upstream``: switch from an upstream CloudKitty.

Reads upstream's database (``--upstream-db``, a MariaDB/MySQL or
PostgreSQL URL, only read) and its rated data (``--source influxdb``:
``--influxdb-url``, ``--influxdb-database``; ``--source v1sql``: its
``rated_data_frames``; ``--source none``: rules and states only), and
writes our database (``[database] connection`` of ``--config-file``,
migrated first) and storage backend (``[storage] backend``):

1. hashmap and pyscripts rules, with their ids (:mod:`cloudkitty.importer.
   rules`);
2. module states, scope states, pending reprocessing tasks, collector
   mappings (:mod:`cloudkitty.importer.states`);
3. rated data of ``[--begin, --end)`` (default: all of it), a chunk of
   ``--chunk-hours`` at a time, with a progress line per chunk
   (:mod:`cloudkitty.importer.rated`);
4. the verification: totals per scope, type and month, both sides side by
   side (:mod:`cloudkitty.importer.verify`).

Every step is idempotent: run it again, or again after a kill, and it
finishes the job without storing anything twice. Exit status: 0 when every
total agrees, 1 when one differs, 2 when the import cannot go on.
"""

import datetime
import sys

from oslo_config import cfg

from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty import importer
from cloudkitty.importer import rated
from cloudkitty.importer import rules
from cloudkitty.importer import states
from cloudkitty.importer import verify
from cloudkitty import service
from cloudkitty import storage
from cloudkitty import timeutils

CLI_OPTS = [
    cfg.StrOpt('upstream-db', required=True,
               help='URL of upstream\'s database (mysql+pymysql://... or '
                    'postgresql://...); only read.'),
    cfg.StrOpt('source', default='influxdb',
               choices=sorted(rated.SOURCES) + ['none'],
               help='Where upstream keeps its rated data: influxdb (its v2 '
                    'default), v1sql (rated_data_frames in --upstream-db), '
                    'or none to import rules and states only.'),
    cfg.StrOpt('influxdb-url', default='http://localhost:8086',
               help='InfluxDB 1.x HTTP URL, with user:password@ if needed.'),
    cfg.StrOpt('influxdb-database', default='cloudkitty',
               help='The InfluxDB database ([storage_influxdb] database).'),
    cfg.StrOpt('begin', help='ISO 8601 start of the rated data to import '
                             '(default: upstream\'s first period).'),
    cfg.StrOpt('end', help='ISO 8601 end (excluded) of the rated data to '
                           'import (default: after upstream\'s last).'),
    cfg.IntOpt('chunk-hours', default=24, min=1,
               help='Hours of rated data read, stored and checkpointed at '
                    'a time.'),
    cfg.BoolOpt('skip-rules', default=False,
                help='Do not copy rules and states (rated data only).'),
]


def _date(conf, name):
    value = getattr(conf, name)
    if value is None:
        return None
    try:
        return timeutils.parse(value).astimezone(
            datetime.timezone.utc)
    except ValueError as exc:
        raise importer.ImportFailed(f'--{name}: {exc}') from None


def make_source(conf, upstream):
    """The :class:`~cloudkitty.importer.RatedSource` of ``--source``
    (``None`` for ``none``)."""
    if conf.source == 'none':
        return None
    if conf.source == 'v1sql':
        return rated.SOURCES['v1sql'](upstream, conf.collect.scope_key)
    return rated.SOURCES[conf.source](
        conf.influxdb_url, conf.influxdb_database,
        scope_key=conf.collect.scope_key, period=conf.collect.period)


def run(conf, out=print):
    """The import described in the module docstring; returns the exit
    status."""
    engine = db.create_engine(conf.database.connection)
    migration.upgrade(engine)
    upstream = importer.upstream_engine(conf.upstream_db)

    def report(table, counts):
        out(f'{table}: {counts}')

    if not conf.skip_rules:
        rules.copy_rules(upstream, engine, report)
        states.copy_states(upstream, engine, report)
    source = make_source(conf, upstream)
    if source is None:
        return 0
    window = rated.default_window(source)
    begin = _date(conf, 'begin') or (window and window[0])
    end = _date(conf, 'end') or (window and window[1])
    if begin is None or end is None:
        out(f'{source}: no rated data')
        return 0
    backend = storage.get_storage(conf)
    backend.init()
    out(f'rated data of [{begin:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) '
        f'from {source}')
    progress = rated.copy_rated(
        source, backend, begin, end,
        datetime.timedelta(hours=conf.chunk_hours), out)
    out(f'{progress.stored:,} points stored, '
        f'{progress.chunks_skipped} chunks already there, '
        f'{progress.rate:,.0f} points/s')
    lines = verify.compare(source, backend, begin, end)
    out(verify.table(lines))
    differing = [line for line in lines if not line.agrees]
    if differing:
        out(f'{len(differing)} of {len(lines)} totals differ beyond the '
            f'tolerance ({source.tolerance} relative)')
        return 1
    out(f'all {len(lines)} totals agree (tolerance {source.tolerance} '
        f'relative)')
    return 0


def main(argv=None):
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(CLI_OPTS)
    service.prepare_service(sys.argv[1:] if argv is None else argv, conf)
    try:
        return run(conf)
    except importer.ImportFailed as exc:
        print(f'cloudkitty-import-upstream: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
