"""The text of the processor's /metrics endpoint, line for line."""

import datetime

from cloudkitty.orchestrator import metrics

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
#: 2024-03-10T12:30Z; the periods due then end with the one of 10h.
NOW = datetime.datetime(2024, 3, 10, 12, 30, tzinfo=UTC)


def test_render_exact_lines_and_escapes():
    text = metrics.render([
        metrics.Family('ck_a', 'gauge', 'Help with \\ and\nnewline "kept".',
                       (({}, 1),)),
        metrics.Family('ck_b_total', 'counter', 'B.', (
            ({'scope': 'p"1\\x\ny'}, 3), ({'scope': 'p2', 'k': 'v'}, 0.5),
            ({'scope': 'p3'}, 2.0))),
        metrics.Family('ck_empty', 'gauge', 'None yet.'),
    ])
    assert text == (
        '# HELP ck_a Help with \\\\ and\\nnewline "kept".\n'
        '# TYPE ck_a gauge\n'
        'ck_a 1\n'
        '# HELP ck_b_total B.\n'
        '# TYPE ck_b_total counter\n'
        'ck_b_total{scope="p\\"1\\\\x\\ny"} 3\n'
        'ck_b_total{scope="p2",k="v"} 0.5\n'
        'ck_b_total{scope="p3"} 2\n'
        '# HELP ck_empty None yet.\n'
        '# TYPE ck_empty gauge\n')


def state(identifier, last, active=True):
    return {'identifier': identifier, 'last_processed_timestamp': last,
            'active': active, 'scope_key': 'project_id', 'fetcher': 'source',
            'collector': 'file', 'scope_activation_toggle_date': None}


def test_the_page_of_scopes_and_counters():
    caught_up = datetime.datetime(2024, 3, 10, 10, tzinfo=UTC)
    states = [state('b', caught_up - 4 * HOUR), state('a', caught_up),
              state('new', None), state('off', caught_up - 10 * HOUR,
                                        active=False)]
    counters = {'a': {'periods_rated': 12, 'periods_reprocessed': 0,
                      'collection_errors': 1, 'rating_errors': 0},
                # A scope whose state went away still has its counts.
                'gone': {'periods_rated': 1, 'periods_reprocessed': 2,
                         'collection_errors': 0, 'rating_errors': 3}}
    text = metrics.render(metrics.families(states, counters, 3600, 2, NOW))
    assert text.splitlines() == [
        '# HELP cloudkitty_scope_states_up 1 if the scope states could be '
        'read for this answer, else 0.',
        '# TYPE cloudkitty_scope_states_up gauge',
        'cloudkitty_scope_states_up 1',
        '# HELP cloudkitty_scope_last_processed_timestamp_seconds Start of '
        'the last period rated for the scope, in seconds since the epoch.',
        '# TYPE cloudkitty_scope_last_processed_timestamp_seconds gauge',
        'cloudkitty_scope_last_processed_timestamp_seconds{scope="a"} '
        '1710064800',
        'cloudkitty_scope_last_processed_timestamp_seconds{scope="b"} '
        '1710050400',
        'cloudkitty_scope_last_processed_timestamp_seconds{scope="off"} '
        '1710028800',
        '# HELP cloudkitty_scope_lag_periods Periods of the active scope '
        'due and not yet rated.',
        '# TYPE cloudkitty_scope_lag_periods gauge',
        'cloudkitty_scope_lag_periods{scope="a"} 0',
        'cloudkitty_scope_lag_periods{scope="b"} 4',
        # Since the month start: 9 days of 24 periods, 0h .. 10h of the 10th.
        'cloudkitty_scope_lag_periods{scope="new"} 227',
        '# HELP cloudkitty_scope_lag_seconds Seconds of periods of the '
        'active scope due and not yet rated.',
        '# TYPE cloudkitty_scope_lag_seconds gauge',
        'cloudkitty_scope_lag_seconds{scope="a"} 0',
        'cloudkitty_scope_lag_seconds{scope="b"} 14400',
        'cloudkitty_scope_lag_seconds{scope="new"} 817200',
        '# HELP cloudkitty_scope_periods_rated_total Periods of the scope '
        'rated and stored by this host\'s workers since the processor '
        'started.',
        '# TYPE cloudkitty_scope_periods_rated_total counter',
        'cloudkitty_scope_periods_rated_total{scope="a"} 12',
        'cloudkitty_scope_periods_rated_total{scope="b"} 0',
        'cloudkitty_scope_periods_rated_total{scope="gone"} 1',
        'cloudkitty_scope_periods_rated_total{scope="new"} 0',
        'cloudkitty_scope_periods_rated_total{scope="off"} 0',
        '# HELP cloudkitty_scope_periods_reprocessed_total Periods of the '
        'scope rated again for reprocessing tasks by this host\'s workers '
        'since the processor started.',
        '# TYPE cloudkitty_scope_periods_reprocessed_total counter',
        'cloudkitty_scope_periods_reprocessed_total{scope="a"} 0',
        'cloudkitty_scope_periods_reprocessed_total{scope="b"} 0',
        'cloudkitty_scope_periods_reprocessed_total{scope="gone"} 2',
        'cloudkitty_scope_periods_reprocessed_total{scope="new"} 0',
        'cloudkitty_scope_periods_reprocessed_total{scope="off"} 0',
        '# HELP cloudkitty_scope_collection_errors_total Passes over the '
        'scope abandoned by this host\'s workers because a metric\'s '
        'collection failed or timed out.',
        '# TYPE cloudkitty_scope_collection_errors_total counter',
        'cloudkitty_scope_collection_errors_total{scope="a"} 1',
        'cloudkitty_scope_collection_errors_total{scope="b"} 0',
        'cloudkitty_scope_collection_errors_total{scope="gone"} 0',
        'cloudkitty_scope_collection_errors_total{scope="new"} 0',
        'cloudkitty_scope_collection_errors_total{scope="off"} 0',
        '# HELP cloudkitty_scope_rating_errors_total Passes over the scope '
        'abandoned by this host\'s workers for a failure other than '
        'collection (rating modules, storage, scope state).',
        '# TYPE cloudkitty_scope_rating_errors_total counter',
        'cloudkitty_scope_rating_errors_total{scope="a"} 0',
        'cloudkitty_scope_rating_errors_total{scope="b"} 0',
        'cloudkitty_scope_rating_errors_total{scope="gone"} 3',
        'cloudkitty_scope_rating_errors_total{scope="new"} 0',
        'cloudkitty_scope_rating_errors_total{scope="off"} 0',
    ]


def test_without_the_scope_states_the_counters_are_served():
    counters = {'a': {'periods_rated': 2, 'periods_reprocessed': 0,
                      'collection_errors': 0, 'rating_errors': 5}}
    lines = metrics.render(metrics.families(
        None, counters, 3600, 2, NOW)).splitlines()
    samples = [line for line in lines if not line.startswith('#')]
    assert samples == [
        'cloudkitty_scope_states_up 0',
        'cloudkitty_scope_periods_rated_total{scope="a"} 2',
        'cloudkitty_scope_periods_reprocessed_total{scope="a"} 0',
        'cloudkitty_scope_collection_errors_total{scope="a"} 0',
        'cloudkitty_scope_rating_errors_total{scope="a"} 5']
