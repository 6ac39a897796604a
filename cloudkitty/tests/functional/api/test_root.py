"""``/``, ``/v1``, ``/v2`` and what no route serves."""

import pytest

from cloudkitty.tests.functional.api import conftest


def test_versions_document(app):
    body = app.get('/').json
    assert body == {'versions': [
        {'id': 'v1', 'status': 'CURRENT',
         'links': [{'href': 'http://localhost/v1/', 'rel': 'self'}]},
        {'id': 'v2', 'status': 'EXPERIMENTAL',
         'links': [{'href': 'http://localhost/v2/', 'rel': 'self'}]},
    ]}


@pytest.mark.parametrize('path', ['/', '/v1', '/v2', '/v1/', '/v2/'])
def test_version_documents_need_no_identity(keystone_app, path):
    assert keystone_app.get(path).status_int == 200


def test_version_document_of_each_version(app):
    assert app.get('/v2').json['version']['id'] == 'v2'
    assert app.get('/v1/').json['version']['status'] == 'CURRENT'


def test_unknown_path_v1_format(app):
    response = app.get('/v1/nothing/here', status=404)
    assert response.json['faultcode'] == 'Client'
    assert response.json['debuginfo'] is None
    assert 'could not be found' in response.json['faultstring']


def test_unknown_path_v2_format(app):
    response = app.get('/v2/nothing', status=404)
    assert set(response.json) == {'message'}


def test_method_not_allowed_says_which(app):
    response = app.post('/v2', status=405)
    assert response.json == {'message': 'Method POST is not allowed on /v2.'}


def test_non_admin_is_refused_admin_routes(keystone_app):
    response = keystone_app.get('/v2/rating/modules',
                                headers=conftest.reader('p1'), status=403)
    assert 'rating:list_modules' in response.json['message']
    response = keystone_app.get('/v1/rating/modules',
                                headers=conftest.reader('p1'), status=403)
    assert response.json['faultcode'] == 'Client'


def test_admin_role_is_admin(keystone_app):
    modules = keystone_app.get('/v2/rating/modules', headers=conftest.ADMIN,
                               status=200).json['modules']
    assert [m['module_id'] for m in modules] == ['hashmap', 'noop',
                                                 'pyscripts']
    assert modules[1] == {'module_id': 'noop',
                          'description': 'Dummy test module.',
                          'enabled': True, 'hot_config': False,
                          'priority': 1}
