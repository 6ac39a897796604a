"""The v2 parameter validators."""

import datetime

import pytest
import voluptuous

from cloudkitty.api.v2 import base

UTC = datetime.timezone.utc


@pytest.mark.parametrize('value, expected', [
    (['a'], ['a']),
    (['a,b', 'c'], ['a', 'b', 'c']),
    ('a, b,,', ['a', 'b']),
    ([], []),
])
def test_multi(value, expected):
    assert base.multi()(value) == expected


@pytest.mark.parametrize('value', [7, ['a', 3], {'a': 1}])
def test_multi_refuses_non_strings(value):
    with pytest.raises(voluptuous.Invalid, match='string'):
        base.multi()(value)


def test_single():
    assert base.single(base.integer(0))(['5']) == 5
    assert base.single(base.integer(0))(5) == 5
    with pytest.raises(voluptuous.Invalid, match='expected one value, got 2'):
        base.single()(['a', 'b'])


def test_key_values_repeated_keys_are_lists():
    assert base.key_values(['type:cpu,project_id:p1', 'type:ram',
                            'time:2024-01-01T00:00:00']) == {
        'type': ['cpu', 'ram'], 'project_id': 'p1',
        'time': '2024-01-01T00:00:00'}


@pytest.mark.parametrize('value', [['novalue'], [':v'], ['k:'], 3])
def test_key_values_refused(value):
    with pytest.raises(voluptuous.Invalid):
        base.key_values(value)


@pytest.mark.parametrize('value, expected', [
    (True, True), ('false', False), ('1', True), ('no', False)])
def test_boolean(value, expected):
    assert base.boolean(value) is expected


@pytest.mark.parametrize('value', ['maybe', 1, None])
def test_boolean_refused(value):
    with pytest.raises(voluptuous.Invalid):
        base.boolean(value)


@pytest.mark.parametrize('value, message', [
    (True, 'expected an integer'), ('1.5', 'not an integer'),
    (-1, 'at least 0'), (1.0, 'expected an integer')])
def test_integer_refused(value, message):
    with pytest.raises(voluptuous.Invalid, match=message):
        base.integer(0)(value)


def test_date_naive_is_utc_and_offsets_are_converted():
    assert base.date('2024-05-01T02:00:00+02:00') == \
        datetime.datetime(2024, 5, 1, tzinfo=UTC)
    assert base.date('20240501T000000') == \
        datetime.datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(voluptuous.Invalid, match='ISO 8601'):
        base.date('May 1st')


def test_non_empty():
    assert base.non_empty('x') == 'x'
    for value in ('', '  ', 3):
        with pytest.raises(voluptuous.Invalid):
            base.non_empty(value)
