"""Property-based fuzzing of the v2 query parameters and bodies: whatever a
client sends, a v2 route answers a success or a 4xx with a ``message``,
never a 5xx.

Each run draws new inputs (a failure prints the input that failed, and
hypothesis' example database replays it first on the next local run).
The application is built once per route: the function under ``@given`` is
defined inside the test and closes over the ``app`` fixture, so examples
share it (hypothesis does not reset function-scoped fixtures between
examples, hence not ``@given`` on the test itself). The examples share
its database too, which is the point: what one request created, the next
one reads, updates or trips over.
"""

import json
import urllib.parse

import hypothesis
from hypothesis import strategies as st
import pytest

# Values that look like what the routes parse (dates, numbers, booleans,
# groupby keys, key:value pairs) mixed with arbitrary text.
_WORDS = st.sampled_from([
    '', 'x', 'type', 'time', 'time-d', 'time-q', 'project_id', 'id', 'ALL',
    '-1', '0', '1', '1e400', 'NaN', 'true', 'false', 'asc', 'DESC',
    'table', 'object', '2024-01-01', '2024-01-01T00:00:00+02:00',
    '20190723T122810Z', '2024-13-45', 'project_id:p1', ':', 'a:b:c',
    'SUM(qty) AS qty', ',', '%', '\x00'])
_TEXT = st.one_of(_WORDS, st.text(max_size=12))

QUERY_KEYS = {
    '/v2/summary': ['begin', 'end', 'groupby', 'filters', 'custom_fields',
                    'response_format', 'offset', 'limit'],
    '/v2/dataframes': ['begin', 'end', 'filters', 'offset', 'limit'],
    '/v2/scope': ['scope_id', 'scope_key', 'fetcher', 'collector', 'active',
                  'offset', 'limit'],
    '/v2/task/reprocesses': ['scope_ids', 'order', 'offset', 'limit'],
    '/v2/rating/modules': [],
}

BODY_KEYS = {
    ('POST', '/v2/dataframes'): ['dataframes'],
    ('PUT', '/v2/scope'): ['all_scopes', 'scope_id', 'scope_key', 'fetcher',
                           'collector', 'last_processed_timestamp', 'state'],
    ('PATCH', '/v2/scope'): ['scope_id', 'scope_key', 'fetcher', 'collector',
                             'active'],
    ('POST', '/v2/scope'): ['scope_id', 'scope_key', 'fetcher', 'collector',
                            'last_processed_timestamp', 'active'],
    ('POST', '/v2/task/reprocesses'): ['scope_ids', 'start_reprocess_time',
                                       'end_reprocess_time', 'reason'],
    ('PUT', '/v2/rating/modules/noop'): ['enabled', 'priority'],
}

_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), _TEXT,
              st.floats(allow_nan=False, allow_infinity=False)),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(_TEXT, children, max_size=3)),
    max_leaves=8)


def _queries(keys):
    return st.lists(st.tuples(st.sampled_from(keys) if keys else _TEXT,
                              _TEXT), max_size=6)


def _bodies(keys):
    return st.dictionaries(st.one_of(st.sampled_from(keys), _TEXT), _JSON,
                           max_size=len(keys) + 1)


def _check(response):
    assert response.status_int < 500, response.text
    if response.status_int >= 400:
        assert response.json['message'], response.text


# A few seconds for the whole module; new inputs every run.
FUZZ = hypothesis.settings(max_examples=100, deadline=None)


@pytest.mark.usefixtures('rated')
@pytest.mark.parametrize('path', sorted(QUERY_KEYS))
def test_v2_query_parameters_never_cause_a_5xx(app, path):
    @FUZZ
    @hypothesis.given(query=_queries(QUERY_KEYS[path]))
    def run(query):
        _check(app.get(f'{path}?{urllib.parse.urlencode(query)}',
                       expect_errors=True))
    run()


@pytest.mark.usefixtures('rated')
@pytest.mark.parametrize('method, path', sorted(BODY_KEYS))
def test_v2_bodies_never_cause_a_5xx(app, method, path):
    @FUZZ
    @hypothesis.given(body=_bodies(BODY_KEYS[method, path]))
    def run(body):
        _check(app.request(path, method=method, body=json.dumps(body).encode(),
                           content_type='application/json',
                           expect_errors=True))
    run()
