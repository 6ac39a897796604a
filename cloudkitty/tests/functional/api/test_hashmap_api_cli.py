"""The ``cloudkitty hashmap ...`` commands against the hashmap API: the
client's own request code (python-cloudkittyclient's ``HashmapManager``:
its URLs, ids in bodies, float costs, whole objects sent back by updates)
over WebTest, following redirects as keystoneauth does.

python-cloudkittyclient is in test-requirements.txt: without it these
tests skip, except under ``CI=true``, where they fail.
"""

import datetime
import importlib
import json
import os

import pytest


def _client_module(name):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        message = (f'{name} (python-cloudkittyclient, in '
                   f'test-requirements.txt) cannot be imported: {exc}')
        if os.environ.get('CI') == 'true':
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)


hashmap = _client_module('cloudkittyclient.v1.rating.hashmap')
ks_http = _client_module('keystoneauth1.exceptions.http')

UTC = datetime.UTC
_REDIRECTS = (301, 302, 303, 305, 307, 308)


class Response:
    """The part of a requests response the client reads."""

    def __init__(self, webtest_response):
        self.status_code = webtest_response.status_int
        self.text = webtest_response.text
        self.headers = webtest_response.headers

    def json(self):
        return json.loads(self.text)


class Adapter:
    """Stands for the keystoneauth Adapter the client calls: same methods,
    redirects followed with the same method and body (at most 30, as
    keystoneauth does), 4xx and 5xx raised as keystoneauth's HttpError."""

    def __init__(self, app):
        self.app = app
        self.sent = []

    def _request(self, method, url, json_body=None):
        body = b'' if json_body is None else json.dumps(json_body).encode()
        for _ in range(31):
            self.sent.append((method, url))
            response = self.app.request(
                url, method=method, body=body, expect_errors=True,
                content_type='application/json' if body else None)
            if response.status_int not in _REDIRECTS:
                break
            url = response.location
        response = Response(response)
        if response.status_code >= 400:
            raise ks_http.HttpError(message=response.text,
                                    http_status=response.status_code,
                                    response=response)
        return response

    def get(self, url):
        return self._request('GET', url)

    def post(self, url, json=None):
        return self._request('POST', url, json)

    def put(self, url, json=None):
        return self._request('PUT', url, json)

    def delete(self, url, json=None):
        return self._request('DELETE', url, json)


@pytest.fixture
def client(app):
    return hashmap.HashmapManager(Adapter(app))


def _later(days):
    return (datetime.datetime.now(UTC) + datetime.timedelta(days=days)
            ).replace(tzinfo=None, microsecond=0).isoformat()


def test_the_cli_manages_every_object(client):
    assert client.get_mapping_types() == ['flat', 'rate']
    service = client.create_service(name='instance')
    assert client.get_service() == {'services': [service]}
    assert client.get_service(service_id=service['service_id']) == service
    field = client.create_field(name='flavor',
                                service_id=service['service_id'])
    assert client.get_field(service_id=service['service_id']) == {
        'fields': [field]}
    assert client.get_field(field_id=field['field_id']) == field
    group = client.create_group(name='G')
    assert client.get_group() == {'groups': [group]}
    assert client.get_group(group_id=group['group_id']) == group

    # argparse gives the costs of ``create`` as floats.
    nano = client.create_mapping(cost=1.337, field_id=field['field_id'],
                                 value='m1.nano', group_id=group['group_id'])
    assert nano['cost'] == '1.337'
    flat = client.create_mapping(cost=1.0, service_id=service['service_id'],
                                 description='Per instance')
    assert flat['cost'] == '1'
    assert [m['mapping_id'] for m in client.get_mapping(
        service_id=service['service_id'])['mappings']] == [
        flat['mapping_id']]
    assert client.get_mapping(mapping_id=nano['mapping_id']) == nano
    assert client.get_mapping_group(mapping_id=nano['mapping_id']) == group
    assert client.get_group_mappings(group_id=group['group_id']) == {
        'mappings': [nano]}

    # A started mapping may get an end; a future one may change its cost.
    end = _later(30)
    ended = client.update_mapping(mapping_id=flat['mapping_id'], end=end)
    assert ended['end'] == end
    with pytest.raises(ks_http.HttpError) as refused:
        client.update_mapping(mapping_id=flat['mapping_id'], cost='2')
    assert refused.value.http_status == 400
    future = client.create_mapping(cost=0.5, service_id=service['service_id'],
                                   start=_later(40), name='next')
    assert client.update_mapping(mapping_id=future['mapping_id'],
                                 cost='0.75')['cost'] == '0.75'

    level = client.create_threshold(level='64', cost=0.15,
                                    field_id=field['field_id'],
                                    group_id=group['group_id'])
    assert (level['level'], level['cost']) == ('64.00000000', '0.15')
    assert client.get_threshold(field_id=field['field_id']) == {
        'thresholds': [level]}
    assert client.get_threshold(threshold_id=level['threshold_id']) == level
    assert client.update_threshold(threshold_id=level['threshold_id'],
                                   cost='0.2')['cost'] == '0.2'
    assert client.get_threshold_group(
        threshold_id=level['threshold_id']) == group
    assert len(client.get_group_thresholds(
        group_id=group['group_id'])['thresholds']) == 1

    client.delete_mapping(mapping_id=future['mapping_id'])
    assert client.get_mapping(mapping_id=future['mapping_id'])[
        'deleted'] is not None
    client.delete_threshold(threshold_id=level['threshold_id'])
    client.delete_group(group_id=group['group_id'], recursive=True)
    assert client.get_mapping(mapping_id=nano['mapping_id'])[
        'deleted'] is not None
    client.delete_field(field_id=field['field_id'])
    client.delete_service(service_id=service['service_id'])
    assert client.get_service() == {'services': []}


def test_an_update_redirects_to_the_object(client):
    service = client.create_service(name='volume')
    future = client.create_mapping(cost=0.001,
                                   service_id=service['service_id'],
                                   start=_later(2))
    adapter = client.api_client
    adapter.sent.clear()
    client.update_mapping(mapping_id=future['mapping_id'], cost='0.002')
    url = f"/v1/rating/module_config/hashmap/mappings/{future['mapping_id']}"
    puts = [sent for sent in adapter.sent if sent[0] == 'PUT']
    # The collection's URL, then the object's, as long as keystoneauth
    # follows: sending the same object again changes nothing.
    assert puts[0] == ('PUT', '/v1/rating/module_config/hashmap/mappings/')
    assert all(sent[1].endswith(url) for sent in puts[1:])
    assert client.get_mapping(mapping_id=future['mapping_id'])[
        'cost'] == '0.002'


def test_errors_reach_the_cli(client):
    client.create_service(name='instance')
    with pytest.raises(ks_http.HttpError) as conflict:
        client.create_service(name='instance')
    assert conflict.value.http_status == 409
    assert 'already exists' in conflict.value.message
    with pytest.raises(ks_http.HttpError) as missing:
        client.get_mapping(mapping_id='nope')
    assert missing.value.http_status == 404
