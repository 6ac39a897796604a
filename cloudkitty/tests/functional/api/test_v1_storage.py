"""``/v1/storage/dataframes``."""

import pytest

from cloudkitty.tests.functional.api import conftest

pytestmark = pytest.mark.usefixtures('rated')


def _frames(response):
    return {(f['begin'], f['tenant_id']): f['resources']
            for f in response.json['dataframes']}


def _resource(service, scope, resource, qty, price, **metadata):
    return {'service': service, 'volume': qty, 'rating': price,
            'desc': {'project_id': scope, 'id': resource, **metadata}}


def test_one_frame_per_point(app):
    """As upstream: each stored point is a frame of its own."""
    first = conftest.at(1, 0).replace(tzinfo=None).isoformat()
    second = conftest.at(1, 1).replace(tzinfo=None).isoformat()
    hour = {first: second, second: conftest.at(1, 2).replace(
        tzinfo=None).isoformat()}
    response = app.get('/v1/storage/dataframes', status=200)
    assert response.content_type == 'application/json'
    assert response.json == {'dataframes': [
        {'begin': begin, 'end': hour[begin], 'tenant_id': scope,
         'resources': [resource]} for begin, scope, resource in [
            (first, 'p1', _resource('cpu', 'p1', 'i-1', '1', '1.5',
                                    flavor='m1')),
            (first, 'p2', _resource('cpu', 'p2', 'i-2', '2', '1.25',
                                    flavor='m2')),
            (first, 'p1', _resource('image.size', 'p1', 'img-1', '10',
                                    '0.25', disk_format='raw')),
            (second, 'p1', _resource('cpu', 'p1', 'i-1', '1', '1.5',
                                     flavor='m1'))]]}


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
