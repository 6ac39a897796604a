"""``/v1/info``: metrics.yml as configured."""

import pytest


def test_config_is_metrics_yml_as_written(app):
    config = app.get('/v1/info/config').json
    assert config['metrics']['image.size']['factor'] == '1/1048576'
    assert config['metrics']['cpu']['groupby'] == ['id']


def test_metrics(app):
    assert app.get('/v1/info/metrics').json == {'metrics': [
        {'metric_id': 'cpu', 'unit': 'instance', 'metadata': ['flavor']},
        {'metric_id': 'image.size', 'unit': 'MiB',
         'metadata': ['container_format', 'disk_format']},
    ]}


def test_one_metric_with_a_dot_in_its_id(app):
    assert app.get('/v1/info/metrics/image.size').json == {
        'metric_id': 'image.size', 'unit': 'MiB',
        'metadata': ['container_format', 'disk_format']}


@pytest.mark.parametrize('path', ['/v1/info/metrics/nope',
                                  '/v1/info/services/nope'])
def test_unknown_metric(app, path):
    response = app.get(path, status=404)
    assert response.json['faultstring'] == "Unknown metric 'nope'."


def test_services_are_aliases(app):
    services = app.get('/v1/info/services').json['services']
    assert services[0] == {'service_id': 'cpu', 'unit': 'instance',
                           'metadata': ['flavor']}
    assert app.get('/v1/info/services/cpu').json['service_id'] == 'cpu'


def test_any_authenticated_caller(keystone_app):
    headers = {'X-Roles': 'reader', 'X-Project-Id': 'p1'}
    metrics = keystone_app.get('/v1/info/metrics', headers=headers,
                               status=200).json
    assert metrics == {'metrics': [
        {'metric_id': 'cpu', 'unit': 'instance', 'metadata': ['flavor']},
        {'metric_id': 'image.size', 'unit': 'MiB',
         'metadata': ['container_format', 'disk_format']},
    ]}
    config = keystone_app.get('/v1/info/config', headers=headers,
                              status=200).json
    assert config == {'metrics': {
        'cpu': {'unit': 'instance', 'groupby': ['id'],
                'metadata': ['flavor']},
        'image.size': {'unit': 'MiB', 'factor': '1/1048576',
                       'groupby': ['id'],
                       'metadata': ['container_format', 'disk_format']},
    }}
