"""The API when its database is in trouble, on a PostgreSQL of the test's
own (:mod:`~cloudkitty.tests.functional.own_postgresql`), really stopped
and started again; and the ``[database]`` pool limits, counted on the
server.

While the database is down every route that reads it answers 503 with
``Retry-After`` and a body that names no internals; the first request
after it is back is served (the pooled connections of before the restart
are checked before use). Every engine of the API process (state, rating
modules, storage) is one engine per URL, which holds at most
``max_pool_size`` + ``max_overflow`` connections and makes a request wait
``pool_timeout`` seconds for one, then 503.
"""

import concurrent.futures
import contextlib
import json
import threading
import time

import psycopg
import pytest
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty.tests.functional.api import conftest as api_conftest
from cloudkitty.tests.functional import own_postgresql

#: Routes of each kind of handler, reading the database through several
#: collaborators: WSME (module state), the v2 layer (rated data, in the
#: storage; scope state), the hashmap and pyscripts modules' own APIs
#: (their rules). A quote (plain Pecan) reads the rules through the
#: module itself.
ROUTES = ('/v1/rating/modules', '/v2/summary',
          '/v1/rating/module_config/hashmap/services',
          '/v1/rating/module_config/pyscripts/scripts',
          '/v2/scope')

QUOTE = {'resources': [{'service': 'cpu', 'volume': 1}]}

#: What an answer while the database is down must not show.
INTERNALS = ('psycopg', 'sqlalchemy', 'operationalerror', 'select ',
             '127.0.0.1', 'connection', 'traceback', 'postgres')


@pytest.fixture(scope='module')
def cluster():
    """A PostgreSQL of this module's own, with a migrated template
    database."""
    with own_postgresql.running() as server:
        admin(server, 'CREATE DATABASE template_ck')
        engine = db.create_engine(url(server, 'template_ck'))
        migration.upgrade(engine)
        engine.dispose()
        yield server


@pytest.fixture
def database(cluster, request):
    """The name of a database of the test's own, migrated."""
    name = f'ck_{request.node.name[5:40]}'.lower()
    admin(cluster, f'CREATE DATABASE {name} TEMPLATE template_ck')
    return name


def url(cluster, name):
    return cluster.url.rsplit('/', 1)[0] + '/' + name


def admin(cluster, statement):
    with contextlib.closing(psycopg.connect(cluster.url,
                                            autocommit=True)) as connection:
        connection.execute(statement)


def make_app(tmp_path, url, **database):
    conf = api_conftest.make_conf(tmp_path, 'unused.sqlite')
    conf.set_override('connection', url, 'database')
    for name, value in database.items():
        conf.set_override(name, value, 'database')
    backends = hooks.Backends(conf, scope_reset=lambda *args: None)
    return webtest.TestApp(api_app.setup_app(conf, backends)), conf


def client_connections(cluster, database):
    """The client connections to ``database`` the cluster holds."""
    with contextlib.closing(psycopg.connect(cluster.url)) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
            "'client backend' AND datname = %s", (database,)).fetchone()[0]


def assert_unavailable(response):
    assert response.status_int == 503, response.text
    assert response.headers['Retry-After'] == '5'
    text = response.text
    assert 'database is unavailable' in text.lower(), text
    assert not [word for word in INTERNALS if word in text.lower()], text
    document = json.loads(text)
    if response.request.path.startswith('/v1/'):
        assert document == {'faultcode': 'Server', 'faultstring': document[
            'faultstring'], 'debuginfo': None}
    else:
        assert list(document) == ['message']


def enable_rating_modules(app):
    """Quotes priced by the hashmap module, which reads its rules through
    an engine of its own making (the pyscripts module prices quotes on the
    processors only)."""
    app.put_json('/v1/rating/modules/hashmap', {'enabled': True},
                 status=302)


def test_down_is_503_with_retry_after_and_back_is_200(tmp_path, cluster,
                                                      database):
    app, _conf = make_app(tmp_path, url(cluster, database))
    enable_rating_modules(app)

    def warm():
        for route in ROUTES:
            app.get(route, status=(200, 404))
        assert app.post_json('/v1/rating/quote', QUOTE).text == '0'

    warm()  # the pool holds connections from now on
    # Restarted with no request in between: the first request after it
    # meets the dead connections pooled before it, checks and replaces
    # them, and is served.
    cluster.stop()
    cluster.start()
    warm()

    cluster.stop()
    try:
        for route in ROUTES:
            assert_unavailable(app.get(route, expect_errors=True))
        assert_unavailable(app.post_json('/v1/rating/quote', QUOTE,
                                         expect_errors=True))
    finally:
        cluster.start()
    warm()


def test_pool_limits_hold_for_the_whole_process(tmp_path, cluster,
                                                database):
    app, _conf = make_app(tmp_path, url(cluster, database),
                          max_pool_size=1, max_overflow=0, pool_timeout=60)
    seen = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(client_connections(cluster, database))

    def request(route):
        if route == '/v1/rating/quote':
            return app.post_json(route, QUOTE, expect_errors=True).status_int
        return app.get(route, expect_errors=True).status_int

    enable_rating_modules(app)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(
                request, (*ROUTES, '/v1/rating/quote') * 8))
    finally:
        stop.set()
        watcher.join(10)
    assert set(statuses) <= {200, 404}, statuses
    assert seen and max(seen) == 1, seen
    # Every collaborator of the API took its connections from one pool,
    # which keeps its one connection open.
    assert client_connections(cluster, database) == 1

    # That pool is the process's: with its one connection taken, a request
    # waits pool_timeout seconds and is told to come back.
    app, conf = make_app(tmp_path, url(cluster, database), max_pool_size=1,
                         max_overflow=0, pool_timeout=1)
    with db.get_engine(conf).connect():
        for route in ('/v1/rating/modules', '/v2/summary'):
            started = time.monotonic()
            assert_unavailable(app.get(route, expect_errors=True))
            assert 1 <= time.monotonic() - started < 10
    assert app.get('/v2/summary').status_int == 200
