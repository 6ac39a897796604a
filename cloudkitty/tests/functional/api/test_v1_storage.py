"""``/v1/storage/dataframes``."""

import pytest

from cloudkitty.tests.functional.api import conftest

pytestmark = pytest.mark.usefixtures('rated')


def _frames(response):
    return {(f['begin'], f['tenant_id']): f['resources']
            for f in response.json['dataframes']}


def test_dataframes_by_period_and_tenant(app):
    frames = _frames(app.get('/v1/storage/dataframes'))
    first = conftest.at(1, 0).replace(tzinfo=None).isoformat()
    second = conftest.at(1, 1).replace(tzinfo=None).isoformat()
    assert set(frames) == {(first, 'p1'), (first, 'p2'), (second, 'p1')}
    p1 = sorted(frames[(first, 'p1')], key=lambda r: r['service'])
    assert p1[0] == {'service': 'cpu', 'volume': '1', 'rating': '1.5',
                     'desc': {'project_id': 'p1', 'id': 'i-1',
                              'flavor': 'm1'}}
    assert p1[1]['service'] == 'image.size'
    assert p1[1]['rating'] == '0.25'


def test_filters(app):
    frames = _frames(app.get('/v1/storage/dataframes', params={
        'tenant_id': 'p2', 'resource_type': 'cpu'}))
    assert [key[1] for key in frames] == ['p2']


def test_reader_only_sees_own(keystone_app):
    frames = _frames(keystone_app.get('/v1/storage/dataframes',
                                      headers=conftest.reader('p2')))
    assert {key[1] for key in frames} == {'p2'}
    keystone_app.get('/v1/storage/dataframes', params={'tenant_id': 'p1'},
                     headers=conftest.reader('p2'), status=403)


def test_bad_date(app):
    app.get('/v1/storage/dataframes', params={'end': 'never'}, status=400)
