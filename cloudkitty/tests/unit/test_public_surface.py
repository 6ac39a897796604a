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
    ('cloudkitty.rating', 'Pipeline'),
    ('cloudkitty.storage.v2', 'BaseStorage'),
    ('cloudkitty.testing', 'ModuleState'),
    ('cloudkitty.testing', 'ScopeState'),
    ('cloudkitty.testing', 'Storage'),
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


def doubling_module():
    """A third-party rating module as the guide has it: ``process(data)``
    only, and a constructor of its own taking ``**kwargs``."""
    from cloudkitty import dataframe
    from cloudkitty import rating

    class Doubling(rating.RatingProcessorBase):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

        def process(self, data):
            priced = dataframe.DataFrame(data.start, data.end)
            for type_, point in data.iterpoints():
                priced.add_point(point.set_price(point.qty * 2), type_)
            return priced

    module = Doubling()
    module.module_name = 'doubling'
    return module


def test_a_module_written_for_process_alone_rates_and_quotes():
    import datetime
    import decimal

    from cloudkitty import dataframe
    from cloudkitty import rating
    from cloudkitty import signatures
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    frame = dataframe.DataFrame(start, start + datetime.timedelta(hours=1))
    frame.add_point(dataframe.DataPoint('u', '1.5', 0, {}, {}), 'cpu')
    module = doubling_module()
    pipeline = rating.Pipeline({'doubling': module},
                               {'doubling': {'enabled': True, 'priority': 1}})
    for priced in (pipeline.rate(frame, 'scope-a'), pipeline.quote(frame),
                   rating.rate(frame, [module], 'scope-a')):
        assert [p.price for _, p in priced.iterpoints()] == [
            decimal.Decimal('3.0')]
    with pytest.warns(DeprecationWarning):
        assert module.for_scope('scope-a') is module
    # A constructor without an ``engine`` parameter is not handed one.
    assert not signatures.takes_keyword(
        type(module), 'engine', var_keyword=False)


def test_the_shipped_modules_get_the_process_engine():
    from cloudkitty import rating
    engine = object()
    modules = rating.load_modules(engine=engine)
    assert modules['hashmap']._engine is engine
    assert modules['pyscripts']._engine is engine
    assert set(modules) >= {'hashmap', 'noop', 'pyscripts'}
