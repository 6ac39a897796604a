"""Fetchers: the loader and the source fetcher."""

from oslo_config import cfg
import pytest

from cloudkitty import conf as ck_conf
from cloudkitty import fetcher
from cloudkitty.fetcher import source


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty')
    return conf


@pytest.mark.parametrize('sources, expected', [
    ([], []),
    (['p1'], ['p1']),
    (['p2', 'p1', 'p2', ' p3 ', ''], ['p2', 'p1', 'p3']),
])
def test_source_fetcher_lists_the_configured_scopes(conf, sources, expected):
    conf.set_override('sources', sources, group='fetcher_source')
    assert source.SourceFetcher(conf=conf).get_tenants() == expected


def test_source_fetcher_from_a_config_file(tmp_path):
    path = tmp_path / 'cloudkitty.conf'
    path.write_text('[fetcher_source]\nsources = a, b ,c\n')
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf(['--config-file', str(path)], project='cloudkitty')
    assert fetcher.get_fetcher(conf).get_tenants() == ['a', 'b', 'c']


def test_get_fetcher_loads_the_entry_point(conf):
    conf.set_override('sources', ['x'], group='fetcher_source')
    instance = fetcher.get_fetcher(conf)
    assert type(instance) is source.SourceFetcher
    assert instance.conf is conf
    assert instance.get_tenants() == ['x']


def test_get_fetcher_unknown_backend(conf):
    conf.set_override('backend', 'no-such-fetcher', group='fetcher')
    with pytest.raises(Exception) as info:
        fetcher.get_fetcher(conf)
    assert 'no-such-fetcher' in str(info.value)


class LegacyFetcher(fetcher.BaseFetcher):
    """Written for cfg.CONF: its constructor takes no argument."""

    def __init__(self):
        super().__init__()

    def get_tenants(self):
        return ['legacy']


class KwargsFetcher(fetcher.BaseFetcher):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def get_tenants(self):
        return ['kwargs']


class FakeManager:
    driver_class = None

    def __init__(self, namespace, name, invoke_on_load):
        assert namespace == fetcher.FETCHERS_NAMESPACE
        assert invoke_on_load is False
        self.driver = self.driver_class


@pytest.mark.parametrize('fetcher_class, uses_conf', [
    (LegacyFetcher, False), (KwargsFetcher, True),
    (source.SourceFetcher, True)])
def test_get_fetcher_adapts_to_the_constructor(conf, monkeypatch,
                                               fetcher_class, uses_conf):
    monkeypatch.setattr(FakeManager, 'driver_class', fetcher_class)
    monkeypatch.setattr(fetcher.driver, 'DriverManager', FakeManager)
    instance = fetcher.get_fetcher(conf)
    assert type(instance) is fetcher_class
    assert (instance.conf is conf) is uses_conf
    if not uses_conf:
        assert instance.conf is cfg.CONF


def test_base_fetcher_is_abstract(conf):
    with pytest.raises(TypeError):
        fetcher.BaseFetcher(conf)
    assert fetcher.BaseFetcher.__abstractmethods__ == {'get_tenants'}
