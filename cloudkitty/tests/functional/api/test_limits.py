"""What one request may cost: the body size (``[api]
max_request_body_size``, refused before a byte is read), the resources
of a quote (``[api] max_quote_resources``, refused before any is
validated), and who may ask for a quote at all (a role on a project)."""

import io
import json

import pytest
import webob
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty.tests.functional.api import test_pipeline

LIMIT = 1000


class Unreadable(io.RawIOBase):
    """A ``wsgi.input`` of ``size`` bytes that fails the test if more than
    ``allowed`` of them are read."""

    def __init__(self, size, allowed=0):
        super().__init__()
        self.size = size
        self.allowed = allowed
        self.read_so_far = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        count = min(len(buffer), self.size - self.read_so_far)
        assert self.read_so_far + count <= self.allowed, (
            f'{self.read_so_far + count} bytes of the body read')
        buffer[:count] = b' ' * count
        self.read_so_far += count
        return count


@pytest.fixture
def limited(conf, backends):
    """The application with a body limit of :data:`LIMIT` bytes and a quote
    limit of 3 resources (both read when the application is built)."""
    conf.set_override('max_request_body_size', LIMIT, 'api')
    conf.set_override('max_quote_resources', 3, 'api')
    return api_app.setup_app(conf, backends)


def call(application, path, stream, **environ):
    request = webob.Request.blank(path, method='POST', **environ)
    request.environ['wsgi.input'] = stream
    request.content_type = 'application/json'
    return request.get_response(application)


@pytest.mark.parametrize('path', ['/v1/rating/quote', '/v2/dataframes',
                                  '/v1/rating/module_config/hashmap/groups'])
def test_a_body_over_the_limit_is_413_and_never_read(limited, path):
    # 50 MB announced: answered at once, not a byte read.
    stream = Unreadable(50 * 2 ** 20)
    response = call(limited, path, stream, content_length=stream.size)
    assert response.status_int == 413
    assert response.content_type == 'application/json'
    message = response.json.get('faultstring') or response.json['message']
    assert f'at most {LIMIT} bytes' in message
    assert '[api] max_request_body_size' in message
    assert stream.read_so_far == 0
    if path.startswith('/v1/'):
        assert response.json['faultcode'] == 'Client'
    else:
        assert list(response.json) == ['message']


def test_a_body_of_the_limit_is_read(limited):
    body = json.dumps({'resources': [{'service': 'cpu', 'volume': 1}]})
    body += ' ' * (LIMIT - len(body))
    response = webtest.TestApp(limited).post(
        '/v1/rating/quote', body, content_type='application/json')
    assert response.text == '0'
    response = webtest.TestApp(limited).post(
        '/v1/rating/quote', body + ' ', content_type='application/json',
        status=413)


def test_a_body_without_length_is_read_one_byte_past_the_limit_at_most(
        limited):
    stream = Unreadable(50 * 2 ** 20, allowed=LIMIT + 1)
    response = call(limited, '/v2/dataframes', stream,
                    environ={'wsgi.input_terminated': True})
    assert response.status_int == 413
    assert stream.read_so_far == LIMIT + 1

    body = json.dumps({'resources': [{'service': 'cpu', 'volume': 2}]})
    response = call(limited, '/v1/rating/quote', io.BytesIO(body.encode()),
                    environ={'wsgi.input_terminated': True})
    assert (response.status_int, response.text) == (200, '0')


def test_the_limit_is_in_the_paste_pipeline(conf):
    conf.set_override('paste_config', test_pipeline.PASTE_INI, 'api')
    conf.set_override('max_request_body_size', LIMIT, 'api')
    stream = Unreadable(LIMIT + 1)
    response = call(api_app.load_app(conf), '/v1/rating/quote', stream,
                    content_length=stream.size)
    assert response.status_int == 413
    assert stream.read_so_far == 0


def quote(count, volume=1):
    return {'resources': [{'service': 'cpu', 'volume': volume}] * count}


def test_a_quote_over_max_quote_resources_is_413_before_validation(
        limited):
    app = webtest.TestApp(limited)
    assert app.post_json('/v1/rating/quote', quote(3)).text == '0'
    # Invalid resources, but too many of them: the count is checked first.
    response = app.post_json('/v1/rating/quote', quote(4, volume='lots'),
                             status=413)
    assert response.json == {
        'faultcode': 'Client', 'debuginfo': None,
        'faultstring': 'A quote prices at most 3 resources ([api] '
                       'max_quote_resources); this one has 4.'}


def test_max_quote_resources_defaults_to_a_thousand(app):
    app.post_json('/v1/rating/quote', quote(1000))
    app.post_json('/v1/rating/quote', quote(1001), status=413)


@pytest.fixture
def keystone(conf, scope_reset):
    conf.set_override('auth_strategy', 'keystone')
    return webtest.TestApp(api_app.setup_app(
        conf, hooks.Backends(conf, scope_reset=scope_reset)))


def identity(roles, project=None):
    headers = {'X-Roles': ','.join(roles), 'X-User-Id': 'u1',
               'X-Identity-Status': 'Confirmed'}
    if project:
        headers['X-Project-Id'] = project
    return headers


@pytest.mark.parametrize('roles, project, status', [
    (['reader'], 'p1', 200),
    (['member', 'reader'], 'p1', 200),
    (['admin', 'member', 'reader'], 'p1', 200),
    # No role on the project.
    ([], 'p1', 403),
    # Unscoped, and scoped to a domain (or the system): no project.
    ([], None, 403),
    (['reader'], None, 403),
])
def test_quoting_needs_a_role_on_a_project(keystone, roles, project,
                                           status):
    response = keystone.post_json('/v1/rating/quote', quote(1),
                                  headers=identity(roles, project),
                                  status=status)
    if status == 403:
        assert 'rating:quote' in response.json['faultstring']
