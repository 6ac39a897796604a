"""``cloudkitty-rate``: rate every scope until it is caught up, then report.

The processor's work in one process, for a quick start or a one-off import
of usage exported from another system: migrate the database, initialise the
storage, rate every due period of every scope (``--begin`` sets where a
scope without a state starts, ``--end`` the instant to rate up to), then
print what is stored per scope and type with totals. ``--rules`` loads
hashmap rules from a YAML file first (see :mod:`cloudkitty.rating.hash.
rules_file`) and enables the hashmap module, so that what is rated is
priced.
"""

import contextlib
import datetime
import decimal
import itertools
import logging
import sys

from oslo_config import cfg

from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty import fetcher
from cloudkitty.orchestrator import processor
from cloudkitty.rating.hash import db as hash_db
from cloudkitty.rating.hash import rules_file
from cloudkitty import service
from cloudkitty import storage
from cloudkitty import storage_state
from cloudkitty import timeutils

CLI_OPTS = [
    cfg.StrOpt('begin',
               help='ISO 8601 start of the first period of a scope that has '
                    'no state yet (default: the start of the current month).'),
    cfg.StrOpt('end',
               help='ISO 8601 instant to rate up to: periods starting before '
                    'it are rated (default: now, minus [collect] '
                    'wait_periods).'),
    cfg.StrOpt('rules',
               help='YAML file of hashmap rules to price the usage with. '
                    'What the database lacks is created (mappings start '
                    'where the file says, else at --begin, else at the '
                    'start of the current month), what it holds is kept, '
                    'and the hashmap module is enabled.'),
]


def _date(conf, name):
    value = getattr(conf, name)
    if value is None:
        return None
    try:
        return timeutils.parse(value)
    except ValueError as exc:
        raise SystemExit(f'cloudkitty-rate: --{name}: {exc}') from None


def _start_new_scopes(conf, engine, scope_ids, begin):
    """Give each scope without a state one that makes ``begin`` its next period."""
    states = storage_state.ScopeStateManager(
        engine, conf.collect.scope_key, conf.fetcher.backend,
        conf.collect.collector)
    before = begin - datetime.timedelta(seconds=conf.collect.period)
    for scope_id in scope_ids:
        if states.get_state(scope_id) is None:
            states.set_last_processed_timestamp(scope_id, before)


def _load_rules(engine, path, begin):
    """Load the hashmap rules of ``path`` and enable hashmap; returns the
    line that says so."""
    try:
        loaded = rules_file.apply(
            hash_db.HashMapDB(engine), rules_file.load(path),
            begin or timeutils.month_window()[0], path)
        storage_state.ModuleStateManager(engine).set_state('hashmap', True)
    except rules_file.RulesFileError as exc:
        raise SystemExit(f'cloudkitty-rate: --rules: {exc}') from None
    return (f'Hashmap rules of {path}: {loaded.created} created, '
            f'{loaded.kept} already there; hashmap enabled.')


def _clock(conf, end):
    """A clock under which exactly the periods starting before ``end`` are due."""
    if end is None:
        return timeutils.utcnow
    shifted = end + datetime.timedelta(
        seconds=conf.collect.wait_periods * conf.collect.period)
    return lambda: min(timeutils.utcnow(), shifted)


def format_report(results, scope_key):
    """Render ``total()`` rows grouped by scope and type as a text table.

    Rows must come sorted by scope; each scope ends with its total rate and
    the table with the grand total (quantities of different types do not
    add up, so only rates are totalled).
    """
    lines = [f'{"scope":<24} {"type":<16} {"qty":>20} {"rate":>16}']
    grand = decimal.Decimal(0)
    for scope_id, rows in itertools.groupby(results, lambda r: r[scope_key]):
        subtotal = decimal.Decimal(0)
        for row in rows:
            lines.append(f'{scope_id:<24} {row["type"]:<16} '
                         f'{row["qty"]:>20} {row["rate"]:>16}')
            subtotal += row['rate']
        lines.append(f'{scope_id:<24} {"(all types)":<16} {"":>20} '
                     f'{subtotal:>16}')
        grand += subtotal
    lines.append(f'{"total":<24} {"":<16} {"":>20} {grand:>16}')
    return '\n'.join(lines)


def main(argv=None):
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(CLI_OPTS)
    service.prepare_service(sys.argv[1:] if argv is None else argv, conf)
    begin, end = _date(conf, 'begin'), _date(conf, 'end')
    # One line per scope and period is the daemon's log; here the summary
    # printed at the end says it all.
    quiet = () if conf.debug else ('cloudkitty.orchestrator', 'alembic')
    with _raised_to(logging.WARNING, quiet):
        return _rate(conf, begin, end)


@contextlib.contextmanager
def _raised_to(level, names):
    """Set the loggers ``names`` to ``level`` while the block runs, then
    put their own levels back: :func:`main` may run in a process that goes
    on afterwards (a test's), whose logging it must leave as it was."""
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, before):
            logger.setLevel(old)


def _rate(conf, begin, end):
    """Load the rules, rate until caught up, print the summary; the exit
    status."""
    store = storage.get_storage(conf)
    store.init()
    scope_ids = None
    # The process's one engine, which the processor's passes share.
    engine = db.get_engine(conf)
    migration.upgrade(engine)
    if conf.rules:
        print(_load_rules(engine, conf.rules, begin))
    if begin is not None:
        scope_ids = list(fetcher.get_fetcher(conf).get_tenants())
        _start_new_scopes(conf, engine, scope_ids, begin)
    try:
        summary = processor.run_until_caught_up(
            conf, scope_ids=scope_ids, clock=_clock(conf, end))
    except processor.ConfigurationError as exc:
        print(f'cloudkitty-rate: {exc}', file=sys.stderr)
        return 2

    scope_key = conf.collect.scope_key
    window_begin = begin or timeutils.parse('1970-01-01')
    window_end = end or timeutils.utcnow()
    totals = store.total(groupby=[scope_key, 'type'], begin=window_begin,
                         end=window_end, paginate=False)
    print(f'Rated {summary["periods"]} periods of {len(summary["scopes"])} '
          f'scopes; stored from {window_begin.isoformat()} to '
          f'{window_end.isoformat()}:')
    print(format_report(totals['results'], scope_key))
    for scope_id, error in sorted(summary['failed'].items()):
        print(f'scope {scope_id} not caught up: {error}', file=sys.stderr)
    return 1 if summary['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
