"""The frame encoding of the pyscripts sandbox, without a sandbox: the
request carries exact strings, and the fast reading of replies builds the
frame DataFrame.from_dict builds, or leaves the reply to it."""

import datetime
import decimal
import json

import pytest

from cloudkitty import dataframe
from cloudkitty.rating.pyscripts import sandbox

D = decimal.Decimal
UTC = datetime.timezone.utc
START = datetime.datetime(2024, 3, 1, tzinfo=UTC)
END = START + datetime.timedelta(hours=1)
FRAME = dataframe.DataFrame(START, END)
PERIOD = {'begin': START.isoformat(), 'end': END.isoformat()}


def test_request_carries_decimals_as_exact_strings():
    frame = dataframe.DataFrame(START, END, {'cpu': [dataframe.DataPoint(
        'instance', D('1.10'), D('0.0000000000000000000000000000001'),
        {'id': 'a'}, {'size': D('2.5')}, 'desc')]})
    request = json.loads(sandbox.encode_request('s', 'pass', frame))
    assert request == {'name': 's', 'code': 'pass', 'data': {
        'period': PERIOD,
        'usage': {'cpu': [{
            'vol': {'unit': 'instance', 'qty': '1.10'},
            'rating': {'price': '1E-31'},
            'groupby': {'id': 'a'}, 'metadata': {'size': '2.5'},
            'description': 'desc'}]}}}


def point(**overrides):
    base = {'vol': {'unit': 'u', 'qty': '1.5'}, 'rating': {'price': '2'},
            'groupby': {'id': 'a'}, 'metadata': {'n': [1, {'x': None}]}}
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


@pytest.mark.parametrize('points', [
    [point()],
    [point(vol={'unit': None, 'qty': 3}), point(rating={'price': 0.1})],
    [point(rating={}), point(groupby={}, metadata={})],
    [point(description='d'), point(vol={'unit': '', 'qty': ' 7 '})],
    [point(rating={'price': '1E+2'}), point(vol={'unit': 'u', 'qty': -1})],
    [],
])
def test_plain_replies_are_read_as_from_dict_reads_them(points):
    reply = {'period': PERIOD, 'usage': {'cpu': points, 'ram': [point()]}}
    fast = sandbox._plain_frame(json.loads(json.dumps(reply)))
    assert fast is not None
    assert fast == dataframe.DataFrame.from_dict(reply)
    assert sandbox.decode_frame(reply, FRAME) == fast


@pytest.mark.parametrize('bad', [
    point(vol={'unit': 'u', 'qty': True}),
    point(vol={'unit': 'u', 'qty': 'x'}),
    point(vol={'unit': 'u'}),
    point(vol={'unit': 1, 'qty': 1}),
    point(rating={'price': None}),
    point(rating={'price': 1, 'cost': 2}),
    point(groupby=[]),
    point(metadata='m'),
    point(description=3),
    dict(point(), extra=1),
    'not a point',
])
def test_anything_else_is_left_to_from_dict(bad):
    reply = {'period': PERIOD, 'usage': {'cpu': [point(), bad]}}
    assert sandbox._plain_frame(reply) is None
    with pytest.raises(ValueError):
        dataframe.DataFrame.from_dict(reply)
    with pytest.raises(ValueError):
        sandbox.decode_frame(reply, FRAME)
