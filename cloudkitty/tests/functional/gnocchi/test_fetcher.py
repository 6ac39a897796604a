"""The gnocchi fetcher against a real Gnocchi (see conftest's dataset)."""

import pytest

from cloudkitty import fetcher
from cloudkitty.fetcher import gnocchi as gnocchi_fetcher
from cloudkitty.tests.functional.gnocchi import conftest


def tenants(url, **options):
    return fetcher.get_fetcher(conftest.make_conf(url, **options)
                               ).get_tenants()


@pytest.mark.parametrize('options,expected', [
    ({'resource_types': ['ck_instance']}, ['proj-a', 'proj-b', 'proj-c']),
    ({'resource_types': ['ck_volume']}, ['proj-b']),
    ({'resource_types': ['ck_volume', 'ck_instance']},
     ['proj-a', 'proj-b', 'proj-c']),
    ({'resource_types': ['ck_instance'], 'scope_attribute': 'user_id'},
     ['alice', 'bob']),
    ({'resource_types': ['ck_instance'], 'scope_attribute': 'zone'},
     ['z1', 'z2', 'z3']),
])
def test_distinct_scope_attribute_values(dataset, options, expected):
    # Other test modules may add resources of other projects (proj-rev).
    found = tenants(dataset.url, **options)
    assert [s for s in found if s != 'proj-rev'] == expected


def test_gnocchi_fetcher_is_the_entry_point(dataset):
    assert isinstance(fetcher.get_fetcher(conftest.make_conf(dataset.url)),
                      gnocchi_fetcher.GnocchiFetcher)


def test_unknown_resource_type_is_a_fetch_error(dataset):
    with pytest.raises(fetcher.FetchError) as error:
        tenants(dataset.url, resource_types=['nope'])
    assert str(error.value).startswith(
        f'gnocchi fetcher: Gnocchi at {dataset.url}: listing the nope '
        'resources: ')


def test_gnocchi_down_is_a_fetch_error_naming_it():
    down = 'http://127.0.0.1:9'
    with pytest.raises(fetcher.FetchError) as error:
        tenants(down, resource_types=['ck_instance'])
    assert str(error.value).startswith(
        f'gnocchi fetcher: Gnocchi at {down}: listing the ck_instance '
        f'resources: Unable to establish connection to {down}/v1/search/'
        'resource/ck_instance')
