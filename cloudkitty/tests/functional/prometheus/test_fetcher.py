"""The prometheus fetcher against a real Prometheus (see conftest)."""

from oslo_config import cfg
import pytest

from cloudkitty import conf as ck_conf
from cloudkitty import fetcher
from cloudkitty.tests.functional import live_server
from cloudkitty.tests.functional.prometheus import server


def make(url, metric='ck_up', user=server.USER, password=server.PASSWORD,
         **options):
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('backend', 'prometheus', 'fetcher')
    options.update(prometheus_url=url, prometheus_user=user,
                   prometheus_password=password, metric=metric)
    for name, value in options.items():
        conf.set_override(name, value, 'fetcher_prometheus')
    return fetcher.get_fetcher(conf)


def test_lists_the_scope_label_values(prometheus):
    # The series without a project_id label names no scope.
    assert make(prometheus.url).get_tenants() == [
        'scope-a', 'scope-b', 'scope.x']


def test_filters_select_the_series(prometheus):
    assert make(prometheus.url, filters={'region': 'one'}).get_tenants() \
        == ['scope-a', 'scope-b']


def test_another_scope_attribute(prometheus):
    assert make(prometheus.url, scope_attribute='region').get_tenants() == [
        'one', 'two']


def test_the_query():
    assert make('http://x', filters={'region': 'one'}).query() == \
        'max(ck_up{region="one"}) by (project_id)'


def test_wrong_credentials_are_a_fetch_error(prometheus):
    with pytest.raises(fetcher.FetchError) as info:
        make(prometheus.url, password='wrong').get_tenants()
    assert str(info.value).startswith(
        f'prometheus fetcher: {prometheus.url}/api/v1/query: HTTP 401')


def test_a_server_that_is_down_is_a_fetch_error():
    url = f'http://127.0.0.1:{live_server.free_port()}'
    with pytest.raises(fetcher.FetchError) as info:
        make(url).get_tenants()
    assert f'{url}/api/v1/query: ConnectionError' in str(info.value)


@pytest.mark.parametrize('options, words', [
    ({'metric': None}, '[fetcher_prometheus] metric is required'),
    ({'metric': 'ck_up', 'prometheus_url': ''}, 'prometheus_url is empty'),
])
def test_missing_options_are_refused(options, words):
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('backend', 'prometheus', 'fetcher')
    for name, value in options.items():
        conf.set_override(name, value, 'fetcher_prometheus')
    with pytest.raises(fetcher.FetchError) as info:
        fetcher.get_fetcher(conf)
    assert words in str(info.value)
