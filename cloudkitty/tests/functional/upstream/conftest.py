"""Fixtures of the tests against a real upstream CloudKitty 25.0.0.

``upstream`` (session): upstream installed in its virtualenv, its database
on a throwaway MariaDB database, its storage on an InfluxDB of its own,
its API server running (``upstream.api``, stopped at teardown); rules
created through that API (``upstream.ids``); states created, and
:data:`POINTS` points rated and stored, by upstream's own code
(:data:`SCOPES`, :data:`TYPES`, :data:`RESOURCES` resources of each type
in each scope, hourly over :data:`MONTHS`). When
something is missing (no influxd, no MariaDB, no PyPI) the tests skip,
except under ``CI=true`` where they fail.
"""

import contextlib
import datetime
import os

import pytest

from cloudkitty.tests.functional import storage as db_servers
from cloudkitty.tests.functional.upstream import server
from cloudkitty.tests.functional.upstream import upstream_api

UTC = datetime.timezone.utc
BEGIN = datetime.datetime(2026, 1, 1, tzinfo=UTC)
END = datetime.datetime(2026, 4, 1, tzinfo=UTC)
MONTHS = ((BEGIN, datetime.datetime(2026, 2, 1, tzinfo=UTC)),
          (datetime.datetime(2026, 2, 1, tzinfo=UTC),
           datetime.datetime(2026, 3, 1, tzinfo=UTC)),
          (datetime.datetime(2026, 3, 1, tzinfo=UTC), END))
SCOPES = tuple(f'scope-{n}' for n in range(10))
TYPES = ('instance', 'volume', 'ip')
RESOURCES = 3
PERIODS = int((END - BEGIN).total_seconds()) // 3600
#: 194,400: the whole import test (rules, rating, import, a killed and a
#: resumed run, comparisons) takes about 2 minutes on 2 busy cores.
POINTS = PERIODS * len(SCOPES) * RESOURCES * len(TYPES)


def unavailable(reason):
    if os.environ.get('CI') == 'true':
        pytest.fail(f'upstream CloudKitty is required under CI: {reason}')
    pytest.skip(f'upstream CloudKitty unavailable: {reason}')


@pytest.fixture(scope='session')
def upstream(tmp_path_factory):
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(db_servers.fresh_database(
                'mariadb', prefix='ck_upstream'))
            influx = server.InfluxDB(tmp_path_factory.mktemp('influxdb'))
            influx.start()
            stack.callback(influx.stop)
            instance = server.Upstream(tmp_path_factory.mktemp('upstream'),
                                       url, influx)
            instance.setup()
            api = upstream_api.UpstreamAPI(instance)
            api.start()
            stack.callback(api.stop)
        except (server.UpstreamUnavailable,
                db_servers.ServerUnavailable) as exc:
            unavailable(exc)
        instance.api = api
        instance.ids = upstream_api.create_rules(api)
        instance.side('setup', {})
        rated = instance.side('rate', {
            'begin': BEGIN.isoformat(), 'periods': PERIODS, 'period': 3600,
            'scopes': SCOPES, 'resources': RESOURCES})
        assert rated == {'points': POINTS}
        yield instance


@pytest.fixture
def ours():
    """The URL of an empty PostgreSQL database of ours."""
    try:
        with db_servers.fresh_database('postgresql',
                                       prefix='ck_imported') as url:
            yield url
    except db_servers.ServerUnavailable as exc:
        unavailable(exc)
