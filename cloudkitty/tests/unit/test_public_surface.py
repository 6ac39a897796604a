"""The names third parties import and the plugin entry points they use."""

import importlib
import importlib.metadata

import pytest

PUBLIC_NAMES = [
    ('cloudkitty.collector', 'BaseCollector'),
    ('cloudkitty.collector', 'METRIC_BASE_SCHEMA'),
    ('cloudkitty.collector', 'NoDataCollected'),
    ('cloudkitty.collector', 'CollectError'),
    ('cloudkitty.dataframe', 'DataPoint'),
    ('cloudkitty.dataframe', 'DataFrame'),
    ('cloudkitty.fetcher', 'BaseFetcher'),
    ('cloudkitty.rating', 'RatingProcessorBase'),
    ('cloudkitty.storage.v2', 'BaseStorage'),
    ('cloudkitty.writer', 'BaseWriter'),
]


@pytest.mark.parametrize('module, name', PUBLIC_NAMES)
def test_public_name_importable(module, name):
    assert getattr(importlib.import_module(module), name) is not None


ENTRY_POINTS = [
    ('cloudkitty.collector.backends', 'file'),
    ('cloudkitty.collector.backends', 'gnocchi'),
    ('cloudkitty.collector.backends', 'meta'),
    ('cloudkitty.collector.backends', 'prometheus'),
    ('cloudkitty.fetchers', 'prometheus'),
    ('cloudkitty.fetchers', 'gnocchi'),
    ('cloudkitty.fetchers', 'keystone'),
    ('cloudkitty.fetchers', 'source'),
    ('cloudkitty.output.writers', 'csv'),
    ('cloudkitty.output.writers', 'osrf'),
    ('cloudkitty.rating.processors', 'noop'),
    ('cloudkitty.storage.v2.backends', 'sqlalchemy'),
    ('oslo.config.opts', 'cloudkitty'),
]


@pytest.mark.parametrize('group, name', ENTRY_POINTS)
def test_entry_point_loads(group, name):
    points = importlib.metadata.entry_points(group=group, name=name)
    assert len(points) == 1, f'{group}:{name} is not installed'
    assert next(iter(points)).load() is not None


def test_base_classes_are_abstract():
    from cloudkitty import collector, fetcher, rating
    from cloudkitty.storage import v2
    for base in (collector.BaseCollector, fetcher.BaseFetcher,
                 rating.RatingProcessorBase, v2.BaseStorage):
        assert base.__abstractmethods__, base
