"""``/v2/task/reprocesses``."""

import datetime

import pytest

from cloudkitty.db import models
from cloudkitty.tests.functional.api import conftest

UTC = datetime.timezone.utc
LAST = datetime.datetime(2024, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
def scopes(backends):
    state = backends.scope_state
    state.set_last_processed_timestamp('s1', LAST)
    state.set_last_processed_timestamp('s2', LAST)
    state.create_scope('s3', LAST, active=False)
    state.create_scope('fresh', None)
    return state


def _task(scope_ids='s1', start='2024-05-01T00:00:00Z',
          end='2024-05-01T10:00:00Z', reason='rules fixed'):
    return {'scope_ids': scope_ids, 'start_reprocess_time': start,
            'end_reprocess_time': end, 'reason': reason}


pytestmark = pytest.mark.usefixtures('scopes')


def test_schedule_and_list(app):
    response = app.post_json('/v2/task/reprocesses', _task(['s1', 's2']),
                             status=202)
    assert response.json == {}
    results = app.get('/v2/task/reprocesses').json['results']
    assert sorted(r['scope_id'] for r in results) == ['s1', 's2']
    assert results[0] == {
        'scope_id': results[0]['scope_id'], 'reason': 'rules fixed',
        'start_reprocess_time': '2024-05-01T00:00:00+00:00',
        'end_reprocess_time': '2024-05-01T10:00:00+00:00',
        'current_reprocess_time': None}


def test_all_means_every_active_scope(app):
    app.post_json('/v2/task/reprocesses', _task('ALL', end='2024-05-01T00:00'),
                  status=400)  # 'fresh' is active and never processed
    app.patch_json('/v2/scope', {'scope_id': 'fresh', 'active': False})
    app.post_json('/v2/task/reprocesses', _task('ALL'), status=202)
    results = app.get('/v2/task/reprocesses').json['results']
    assert sorted(r['scope_id'] for r in results) == ['s1', 's2']


def test_end_equal_to_start_and_to_last_processed(app):
    response = app.post_json('/v2/task/reprocesses', _task(
        start='2024-05-02T00:00:00Z', end='2024-05-02T00:00:00Z'),
        status=202)
    assert response.json == {}
    assert app.get('/v2/task/reprocesses').json == {'results': [{
        'scope_id': 's1', 'reason': 'rules fixed',
        'start_reprocess_time': '2024-05-02T00:00:00+00:00',
        'end_reprocess_time': '2024-05-02T00:00:00+00:00',
        'current_reprocess_time': None}]}


@pytest.mark.parametrize('body, words', [
    (_task(reason='   '), 'reason is blank'),
    (_task(['ALL', 's1']), "'ALL' stands for every active scope"),
    (_task([]), "'scope_ids' is empty"),
    (_task(start='2024-05-01T05:00:00Z', end='2024-05-01T04:00:00Z'),
     'is before start_reprocess_time'),
    (_task(['s1', 'nope', 'other']), 'Unknown scope(s): nope, other'),
    (_task('fresh'), "Scope 'fresh' was never processed"),
    (_task(end='2024-05-02T01:00:00Z'),
     "after the last processed timestamp of scope 's1'"),
    (_task(start='yesterday'), "'start_reprocess_time'"),
    (_task(reason=12), "'reason'"),
    ({'scope_ids': 's1'}, "'start_reprocess_time' is required"),
    ({**_task(), 'priority': 1}, "unknown parameter 'priority'"),
])
def test_schedule_refused(app, body, words):
    response = app.post_json('/v2/task/reprocesses', body, status=400)
    assert words in response.json['message']
    assert app.get('/v2/task/reprocesses').json['results'] == []


def test_misaligned_says_which_window_works(app):
    response = app.post_json('/v2/task/reprocesses', _task(
        start='2024-05-01T00:30:00Z', end='2024-05-01T10:15:00+00:00'),
        status=400)
    message = response.json['message']
    assert 'start_reprocess_time (2024-05-01T00:30:00+00:00) and ' \
        'end_reprocess_time (2024-05-01T10:15:00+00:00) not aligned to the ' \
        'collect period of 3600 seconds' in message
    assert 'start_reprocess_time=2024-05-01T00:00:00+00:00 ' \
        'end_reprocess_time=2024-05-01T10:00:00+00:00' in message


def test_alignment_follows_the_period(app, conf):
    conf.set_override('period', 600, 'collect')
    response = app.post_json('/v2/task/reprocesses', _task(
        start='2024-05-01T00:30:00Z', end='2024-05-01T00:50:00Z'),
        status=202)
    assert response.json == {}
    assert app.get('/v2/task/reprocesses').json == {'results': [{
        'scope_id': 's1', 'reason': 'rules fixed',
        'start_reprocess_time': '2024-05-01T00:30:00+00:00',
        'end_reprocess_time': '2024-05-01T00:50:00+00:00',
        'current_reprocess_time': None}]}


def test_overlap_with_unfinished_task(app):
    app.post_json('/v2/task/reprocesses', _task(), status=202)
    response = app.post_json('/v2/task/reprocesses', _task(
        ['s2', 's1'], start='2024-05-01T10:00:00Z', end='2024-05-01T12:00Z'),
        status=400)
    assert "Scope 's1' already has an unfinished reprocessing task over " \
        '[2024-05-01T00:00:00+00:00, 2024-05-01T10:00:00+00:00]' in \
        response.json['message']
    # Nothing was scheduled for s2 either.
    assert len(app.get('/v2/task/reprocesses').json['results']) == 1
    app.post_json('/v2/task/reprocesses', _task(
        start='2024-05-01T11:00:00Z', end='2024-05-01T12:00Z'), status=202)


def test_finished_task_does_not_block(app, backends):
    app.post_json('/v2/task/reprocesses', _task(), status=202)
    table = models.ReprocessingTask.__table__
    with backends.engine.begin() as connection:
        connection.execute(table.update().values(
            current_reprocess_time=datetime.datetime(2024, 5, 1, 10)))
    response = app.post_json('/v2/task/reprocesses', _task(), status=202)
    assert response.json == {}
    task = {'scope_id': 's1', 'reason': 'rules fixed',
            'start_reprocess_time': '2024-05-01T00:00:00+00:00',
            'end_reprocess_time': '2024-05-01T10:00:00+00:00'}
    results = app.get('/v2/task/reprocesses').json['results']
    assert sorted(results, key=lambda r: r['current_reprocess_time'] or '') \
        == [{**task, 'current_reprocess_time': None},
            {**task, 'current_reprocess_time': '2024-05-01T10:00:00+00:00'}]


def test_list_order_pagination_and_scopes(app):
    for scope, hour in (('s1', '01'), ('s2', '02'), ('s1', '03')):
        app.post_json('/v2/task/reprocesses', _task(
            scope, start=f'2024-05-01T{hour}:00:00Z',
            end=f'2024-05-01T{hour}:00:00Z'), status=202)

    def starts(params=None, path='/v2/task/reprocesses'):
        return [r['start_reprocess_time'][11:13] for r in
                app.get(path, params=params or {}).json['results']]

    assert starts() == ['03', '02', '01']
    assert starts({'order': 'asc'}) == ['01', '02', '03']
    assert starts({'limit': 1, 'offset': 1}) == ['02']
    assert starts({'scope_ids': 's1'}) == ['03', '01']
    assert starts({'scope_ids': 's2,s1', 'order': 'asc'}) == ['01', '02',
                                                              '03']
    assert starts(path='/v2/task/reprocesses/s1') == ['03', '01']
    assert starts({'order': 'asc'}, '/v2/task/reprocesses/s1') == \
        ['01', '03']


@pytest.mark.parametrize('order, hours', [('DESC', ['02', '01']),
                                          ('Asc', ['01', '02'])])
def test_list_order_in_any_case(app, order, hours):
    # The cloudkitty CLI sends order=DESC by default.
    for hour in ('01', '02'):
        app.post_json('/v2/task/reprocesses', _task(
            start=f'2024-05-01T{hour}:00:00Z',
            end=f'2024-05-01T{hour}:00:00Z'), status=202)
    results = app.get('/v2/task/reprocesses',
                      params={'order': order}).json['results']
    assert [r['start_reprocess_time'][11:13] for r in results] == hours


def test_list_of_a_scope_without_tasks_is_404(app):
    app.get('/v2/task/reprocesses/s2', status=404)


@pytest.mark.parametrize('path, params, words', [
    ('/v2/task/reprocesses', {'order': 'up'}, "'order'"),
    ('/v2/task/reprocesses', {'limit': 0}, "'limit'"),
    ('/v2/task/reprocesses/s1', {'scope_ids': 's2'},
     "unknown query parameter 'scope_ids'"),
])
def test_list_bad_parameters(app, path, params, words):
    response = app.get(path, params=params, status=400)
    assert words in response.json['message']


def test_admin_only(keystone_app):
    keystone_app.get('/v2/task/reprocesses', headers=conftest.reader('s1'),
                     status=403)
    keystone_app.post_json('/v2/task/reprocesses', _task(),
                           headers=conftest.reader('s1'), status=403)
