"""``cloudkitty-writer``: write the report files from the rated data.

``cloudkitty-writer [--config-file FILE] generate [--tenant ID] [--begin
DATE] [--end DATE]`` brings the files of ``[output] pipeline`` under
``[output] basepath`` up to date (see :mod:`cloudkitty.writer.orchestrator`)
and prints a summary; ``--tenant`` (repeatable) limits it to some scopes.
``cloudkitty-writer tenants_list`` prints the scopes it would write, one
per line. Progress: a bar on stderr when it is a terminal, otherwise one
log line per scope and month. Exit status 1 with one line on stderr when
the configuration, a date or a scope is wrong, or another run is writing.
"""

import logging
import shutil
import sys

from oslo_config import cfg

from cloudkitty import db
from cloudkitty import service
from cloudkitty import storage
from cloudkitty import timeutils
from cloudkitty import writer
from cloudkitty.writer import orchestrator

PROG = 'cloudkitty-writer'
LOG = logging.getLogger(__name__)


def _add_commands(subparsers):
    generate = subparsers.add_parser(
        'generate', help='write the report files')
    generate.add_argument('--tenant', action='append', metavar='ID',
                          help='scope to write (repeatable; default: all)')
    generate.add_argument('--begin', metavar='DATE',
                          help='write from the month holding DATE (ISO '
                               '8601; default: each scope\'s first data)')
    generate.add_argument('--end', metavar='DATE',
                          help='write the periods starting before DATE '
                               '(default: all the processed ones)')
    subparsers.add_parser('tenants_list', help='list the scopes to write')


def _date(value, option):
    if value is None:
        return None
    try:
        return timeutils.parse(value)
    except ValueError as exc:
        raise writer.WriterError(f'{option}: {exc}') from None


class ProgressBar:
    """A one-line bar on ``stream``, advanced scope by scope."""

    WIDTH = 30

    def __init__(self, scope_ids, stream):
        self._index = {scope_id: i for i, scope_id in enumerate(scope_ids)}
        self._count = len(scope_ids)
        self._stream = stream

    def __call__(self, result):
        self.draw(self._index[result.scope_id],
                  f'{result.scope_id} {result.month:%Y-%m}')

    def draw(self, done, label):
        filled = self.WIDTH * done // max(self._count, 1)
        line = (f'[{"#" * filled}{"." * (self.WIDTH - filled)}] '
                f'{done}/{self._count} scopes  {label}')
        columns = shutil.get_terminal_size().columns - 1
        self._stream.write('\r' + line[:columns].ljust(columns))
        self._stream.flush()

    def close(self):
        self.draw(self._count, 'done')
        self._stream.write('\n')
        self._stream.flush()


def _log_month(result):
    LOG.info('scope %s, %s: %d period(s) written, up to %s; month total %s%s',
             result.scope_id, f'{result.month:%Y-%m}', result.periods,
             result.until.isoformat(), format(result.total, 'f'),
             f'; rebuilt: {", ".join(result.rebuilt)}' if result.rebuilt
             else '')


def _generate(conf, write):
    command = conf.command
    begin = _date(command.begin, '--begin')
    end = _date(command.end, '--end')
    scope_ids = command.tenant or list(write.scopes())
    bar = None
    if sys.stderr.isatty():
        bar = ProgressBar(scope_ids, sys.stderr)
        write.on_month = bar
    try:
        results = write.generate(command.tenant, begin, end)
    finally:
        if bar is not None:
            bar.close()
    rebuilt = sum(len(r.rebuilt) for r in results)
    print(f'{len(results)} month(s) of {len(scope_ids)} scope(s) written '
          f'to {conf.output.basepath} ({", ".join(conf.output.pipeline)}): '
          f'{sum(r.periods for r in results)} period(s) added, {rebuilt} '
          f'file(s) rebuilt')


def main(argv=None):
    conf = cfg.ConfigOpts()
    conf.register_cli_opt(cfg.SubCommandOpt(
        'command', title='commands', handler=_add_commands))
    try:
        service.prepare_service(sys.argv[1:] if argv is None else argv, conf)
    except cfg.Error as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 1
    engine = db.get_engine(conf)
    try:
        write = orchestrator.WriteOrchestrator(
            conf, storage.get_storage(conf, engine=engine), engine,
            writer.get_writers(conf), on_month=_log_month)
        if conf.command.name == 'tenants_list':
            for scope_id in write.scopes():
                print(scope_id)
        else:
            _generate(conf, write)
    except writer.WriterError as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == '__main__':
    sys.exit(main())
