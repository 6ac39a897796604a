"""The API on SQLite, PostgreSQL and MariaDB, built once per database, for
the tests that send it hostile input (``test_no_server_error``,
``test_fuzz_routes``).

A server that cannot be reached skips its tests, except under ``CI=true``
where it fails them.
"""

import contextlib

import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty import storage
from cloudkitty.tests.functional.api import conftest as api_conftest
from cloudkitty.tests.functional import coordination
from cloudkitty.tests.functional import storage as db_servers

DATABASES = ['sqlite', 'postgresql', 'mariadb']

#: Text that tells of the server's internals; no answer may hold any.
INTERNALS = ('sqlalchemy', 'psycopg', 'pymysql', 'Traceback', 'SELECT ',
             'INSERT ')


@contextlib.contextmanager
def database_app(kind, directory):
    """Yield ``(app, backends)``: the API in noauth mode on a migrated,
    empty database of the ``kind`` server (or a SQLite file in
    ``directory``)."""
    with contextlib.ExitStack() as stack:
        if kind == 'sqlite':
            url = f'sqlite:///{directory}/ck.sqlite'
        else:
            try:
                url = stack.enter_context(db_servers.fresh_database(kind))
            except db_servers.ServerUnavailable as exc:
                coordination.missing(str(exc))
        conf = api_conftest.make_conf(directory, directory / 'unused.sqlite')
        conf.set_override('connection', url, 'database')
        engine = db.get_engine(conf)
        migration.upgrade(engine)
        storage.get_storage(conf).init()
        backends = hooks.Backends(
            conf, scope_reset=api_conftest.ResetRecorder())
        yield webtest.TestApp(api_app.setup_app(conf, backends)), backends


def check_answer(response):
    """No 5xx, no internal text."""
    text = response.body.decode('utf-8', 'replace')
    assert response.status_int < 500, (response.status, text[:2000])
    for word in INTERNALS:
        assert word.lower() not in text.lower(), (word, text[:2000])
