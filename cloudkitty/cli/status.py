"""``cloudkitty-status upgrade check``: is this deployment ready to run?

Checks, with oslo.upgradecheck's table (or ``--json``) and exit status
(0 success, 1 warning, 2 failure):

- the database schema is at the migrations' head;
- the storage backend is initialised (its tables answer a query);
- the policy file, if any, is YAML (JSON is deprecated: warning; a file
  that does not parse: failure).
"""

import datetime
import json
import sys

from oslo_config import cfg
from oslo_policy import opts as policy_opts
from oslo_upgradecheck import upgradecheck
import yaml

from cloudkitty import conf as ck_conf
from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty import storage

Code = upgradecheck.Code
Result = upgradecheck.Result

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return f'{type(exc).__name__}: {text[0] if text else ""}'


class Checks(upgradecheck.UpgradeCommands):
    """The checks of ``cloudkitty-status upgrade check`` on ``conf``."""

    display_title = 'CloudKitty upgrade check results'

    def __init__(self, conf):
        self.conf = conf

    def check_database(self):
        """The ``[database] connection`` schema is at the head revision."""
        head = migration.head()
        engine = db.create_engine(self.conf.database.connection)
        try:
            current = migration.current(engine)
        except Exception as exc:  # any driver's error: report, don't crash
            return Result(Code.FAILURE, f'cannot read the schema revision '
                          f'of [database] connection: {_first_line(exc)}')
        finally:
            engine.dispose()
        if current == head:
            return Result(Code.SUCCESS, f'schema at revision {head}')
        if current is None:
            return Result(Code.FAILURE, 'the database has no schema: run '
                          'cloudkitty-dbsync upgrade')
        if not migration.is_known(current):
            return Result(Code.FAILURE, f'the schema is at revision '
                          f'{current}, unknown to this code (which goes up '
                          f'to {head}): was it migrated by a newer release?')
        return Result(Code.FAILURE, f'the schema is at revision {current}, '
                      f'this code needs {head}: run cloudkitty-dbsync '
                      f'upgrade')

    def check_storage(self):
        """The ``[storage] backend`` answers an empty read and a total."""
        backend = self.conf.storage.backend
        try:
            store = storage.get_storage(self.conf)
        except RuntimeError as exc:
            return Result(Code.FAILURE, str(exc))
        window = {'begin': _EPOCH,
                  'end': _EPOCH + datetime.timedelta(seconds=1)}
        try:
            store.retrieve(limit=1, **window)
            store.total(limit=1, **window)
        except Exception as exc:  # any backend's error: report, don't crash
            return Result(Code.FAILURE, f'the {backend!r} storage is not '
                          f'usable ({_first_line(exc)}): run '
                          f'cloudkitty-storage-init')
        finally:
            # SQL backends hold an engine: leave no connection behind.
            engine = getattr(store, 'engine', None)
            if engine is not None:
                engine.dispose()
        return Result(Code.SUCCESS, f'the {backend!r} storage is initialised')

    def check_policy_file(self):
        """``[oslo_policy] policy_file`` is YAML, or absent."""
        name = self.conf.oslo_policy.policy_file
        path = self.conf.find_file(name)
        if path is None:
            return Result(Code.SUCCESS, f'no policy file {name!r}: the '
                          f'defaults in code apply')
        with open(path, encoding='utf-8') as policy_file:
            text = policy_file.read()
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            return Result(Code.WARNING, f'{path} is JSON, a deprecated '
                          f'format: convert it to YAML with '
                          f'oslopolicy-convert-json-to-yaml')
        try:
            rules = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, 'problem_mark', None)
            where = (f' (line {mark.line + 1}, column {mark.column + 1})'
                     if mark else '')
            return Result(Code.FAILURE, f'{path} is not valid YAML: '
                          f'{getattr(exc, "problem", None) or exc}{where}')
        if rules is not None and not isinstance(rules, dict):
            return Result(Code.FAILURE, f'{path} must map rule names to '
                          f'rules, not hold a {type(rules).__name__}')
        return Result(Code.SUCCESS, f'{path} is YAML')

    _upgrade_checks = (
        ('Database schema', check_database),
        ('Storage backend', check_storage),
        ('Policy file format', check_policy_file),
    )


def main(argv=None):
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf.register_opts(policy_opts.list_opts()[0][1], group='oslo_policy')
    return upgradecheck.main(conf, 'cloudkitty', Checks(conf),
                             sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
