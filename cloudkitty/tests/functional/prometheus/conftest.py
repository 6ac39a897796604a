"""Fixtures of the tests against a real Prometheus.

``prometheus`` (session): one :class:`server.Prometheus` with basic
authentication, holding :func:`usage_series`: one hour of usage starting at
``t0``, three days before the session, aligned to the hour, and for the
fetcher a few series a minute before the session. When Prometheus is not
installed the tests skip, except under ``CI=true`` where they fail.
"""

import dataclasses
import datetime
import os

import pytest

from cloudkitty.tests.functional.prometheus import server

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
SCOPE_A, SCOPE_B = 'scope-a', 'scope-b'

#: Values of ck_gauge's series of scope A within the hour (population
#: statistics: vm1 max 9, min 2, sum 40, avg 5, stddev 2, stdvar 4; vm2
#: max 3, min 1, sum 4, avg 2, stddev 1, stdvar 1).
VM1 = [2, 4, 4, 4, 5, 5, 7, 9]
VM2 = [1, 3]
#: ck_values: one constant series per id, for the query functions.
VALUES = {'neg': '-2.5', 'quarter': '0.25', 'zero': '0', 'one': '1',
          'eight': '8', 'hundred': '100', 'sq': '6.25', 'tenth': '0.1'}


def usage_series(t0, now):
    """``[(metric, labels, [(unix seconds, value)])]`` of the session."""
    p = int(t0.timestamp())
    outside = [(p - 1000, 100), (p + 3900, 100)]  # out of the hour
    series = [
        ('ck_gauge', {'project_id': SCOPE_A, 'id': 'vm1',
                      'flavor': 'm1.small'},
         [(p + 200 + 400 * i, v) for i, v in enumerate(VM1)] + outside),
        ('ck_gauge', {'project_id': SCOPE_A, 'id': 'vm2'},
         [(p + 1000, VM2[0]), (p + 2000, VM2[1])] + outside),
        ('ck_gauge', {'project_id': SCOPE_B, 'id': 'vm3',
                      'flavor': 'm1.large'}, [(p + 1800, 1000)]),
        # A counter: +120 every 600 s from 1000, 300 s after the start.
        ('ck_counter', {'project_id': SCOPE_A, 'id': 'vm1'},
         [(p + 300 + 600 * i, 1000 + 120 * i) for i in range(6)]),
        # Scope ids that a regular expression could confuse.
        ('ck_scope', {'project_id': 'scope.x', 'id': 'r1'}, [(p + 600, 1)]),
        ('ck_scope', {'project_id': 'scopeyx', 'id': 'r2'}, [(p + 600, 2)]),
    ]
    series += [('ck_values', {'project_id': SCOPE_A, 'id': id_},
                [(p + 600 * i, value) for i in (1, 3, 5)])
               for id_, value in VALUES.items()]
    # The fetcher's series, a minute before the session.
    recent = int(now.timestamp()) - 60
    series += [
        ('ck_up', {'project_id': SCOPE_A, 'region': 'one'}, [(recent, 1)]),
        ('ck_up', {'project_id': SCOPE_B, 'region': 'one'}, [(recent, 1)]),
        ('ck_up', {'project_id': 'scope.x', 'region': 'two'}, [(recent, 1)]),
        ('ck_up', {'region': 'one'}, [(recent, 1)]),  # no scope label
    ]
    return series


@dataclasses.dataclass
class Running:
    """The session's Prometheus and the start of its data hour."""

    server: server.Prometheus
    t0: datetime.datetime

    @property
    def url(self):
        return self.server.url

    @property
    def end(self):
        return self.t0 + HOUR


def unavailable(reason):
    """Skip, or fail under CI where Prometheus must be there."""
    if os.environ.get('CI') == 'true':
        pytest.fail(f'Prometheus is required under CI: {reason}')
    pytest.skip(reason)


@pytest.fixture(scope='session')
def prometheus(tmp_path_factory):
    now = datetime.datetime.now(UTC)
    t0 = now.replace(minute=0, second=0, microsecond=0) - 72 * HOUR
    datadir = tmp_path_factory.mktemp('prometheus') / 'data'
    try:
        server.create_blocks(server.openmetrics(usage_series(t0, now)),
                             datadir)
        running = server.Prometheus(datadir).start()
    except server.ServerUnavailable as exc:
        unavailable(str(exc))
    try:
        yield Running(running, t0)
    finally:
        running.stop()
