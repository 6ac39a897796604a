"""The paste pipelines of etc/cloudkitty/api_paste.ini and the WSGI entry."""

import os

from keystonemiddleware import auth_token
from oslo_middleware import cors
from oslo_middleware import http_proxy_to_wsgi
import pytest
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.wsgi import api as wsgi_api

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))))
PASTE_INI = os.path.join(ROOT, 'etc', 'cloudkitty', 'api_paste.ini')


@pytest.fixture
def paste_conf(conf):
    conf.set_override('paste_config', PASTE_INI, 'api')
    return conf


def test_noauth_pipeline(paste_conf):
    app = webtest.TestApp(api_app.load_app(paste_conf))
    response = app.get('/v2/rating/modules')
    assert response.headers['X-Openstack-Request-Id'].startswith('req-')
    assert app.get('/healthcheck').status_int == 200


def test_proxy_headers_make_links(paste_conf):
    paste_conf.register_opts(http_proxy_to_wsgi.OPTS, 'oslo_middleware')
    paste_conf.set_override('enable_proxy_headers_parsing', True,
                            'oslo_middleware')
    app = webtest.TestApp(api_app.load_app(paste_conf))
    response = app.get('/', headers={'X-Forwarded-Proto': 'https'})
    assert response.json['versions'][0]['links'][0]['href'].startswith(
        'https://')


def test_keystone_pipeline_needs_a_token(paste_conf):
    paste_conf.set_override('auth_strategy', 'keystone')
    for group, options in auth_token.list_opts():
        paste_conf.register_opts(options, group)
    paste_conf.set_override('www_authenticate_uri', 'http://keystone.invalid',
                            'keystone_authtoken')
    app = webtest.TestApp(api_app.load_app(paste_conf))
    assert app.get('/').status_int == 200
    assert app.get('/v1').status_int == 200
    assert app.get('/v2/').status_int == 200
    assert app.get('/healthcheck').status_int == 200
    app.get('/v1/info/metrics', status=401)
    app.get('/v2/summary', status=401)


def test_cors(paste_conf):
    paste_conf.register_opts(cors.CORS_OPTS, 'cors')
    paste_conf.set_override('allowed_origin', ['https://horizon.example'],
                            'cors')
    app = webtest.TestApp(api_app.load_app(paste_conf))
    response = app.get('/', headers={'Origin': 'https://horizon.example'})
    assert response.headers['Access-Control-Allow-Origin'] == \
        'https://horizon.example'


def test_missing_paste_config(conf, tmp_path):
    conf.set_override('paste_config', str(tmp_path / 'nope.ini'), 'api')
    with pytest.raises(Exception, match='nope.ini'):
        api_app.load_app(conf)


def test_wsgi_application_from_the_config_file(tmp_path, database):
    config_file = tmp_path / 'cloudkitty.conf'
    config_file.write_text(
        '[DEFAULT]\nauth_strategy = noauth\n'
        f'[database]\nconnection = sqlite:///{database}\n'
        f'[api]\npaste_config = {PASTE_INI}\n')
    application = wsgi_api.init_application(
        conf=api_app.cfg.ConfigOpts(),
        environ={wsgi_api.CONFIG_FILE_ENV: str(config_file)})
    app = webtest.TestApp(application)
    assert app.get('/v2/rating/modules').json['modules']
