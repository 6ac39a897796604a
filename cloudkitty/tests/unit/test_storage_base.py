"""BaseStorage's shared logic, with a backend that records what it gets."""

import datetime
import decimal

from oslo_config import cfg
import pytest

from cloudkitty import conf as ck_conf
from cloudkitty import dataframe
from cloudkitty import db
from cloudkitty import storage as ck_storage
from cloudkitty.storage import v2
from cloudkitty.storage.v2 import sqlalchemy as ck_sqlalchemy
from cloudkitty import timeutils

D = decimal.Decimal
UTC = datetime.timezone.utc
T0 = datetime.datetime(2024, 3, 1, tzinfo=UTC)
HOUR = datetime.timedelta(hours=1)


def make_conf(overrides=None):
    """A fresh ConfigOpts; ``overrides`` maps ``(group, name)`` to values."""
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty')
    for (group, name), value in (overrides or {}).items():
        conf.set_override(name, value, group)
    return conf


class Recorder(v2.BaseStorage):
    """Answers with canned results and keeps the primitives' arguments."""

    def __init__(self, conf, points=(), rows=(), total=0):
        super().__init__(conf)
        self.calls = []
        self.points = list(points)
        self.rows = list(rows)
        self.count = total

    def init(self):
        self.calls.append(('init',))

    def _push(self, frames, scope_id):
        self.calls.append(('push', frames, scope_id))

    def _retrieve(self, query, offset, limit):
        self.calls.append(('retrieve', query, offset, limit))
        return len(self.points), self.points

    def _total(self, query, keys, fields, offset, limit):
        self.calls.append(('total', query, keys, fields, offset, limit))
        return self.count, self.rows

    def _delete(self, query):
        self.calls.append(('delete', query))


@pytest.fixture
def storage():
    return Recorder(make_conf())


def test_base_storage_is_abstract():
    with pytest.raises(TypeError):
        v2.BaseStorage(make_conf())


def test_errors_are_value_errors():
    assert issubclass(v2.InvalidQuery, ValueError)
    assert issubclass(v2.InvalidData, ValueError)
    assert issubclass(v2.InvalidQuery, v2.StorageError)


@pytest.mark.parametrize('now, expected', [
    (datetime.datetime(2024, 3, 15, 12, tzinfo=UTC),
     (T0, datetime.datetime(2024, 4, 1, tzinfo=UTC))),
    (datetime.datetime(2024, 12, 31, 23, 59, tzinfo=UTC),
     (datetime.datetime(2024, 12, 1, tzinfo=UTC),
      datetime.datetime(2025, 1, 1, tzinfo=UTC))),
    # 00:30 on 1 April in UTC+2 is still March in UTC.
    (datetime.datetime(2024, 4, 1, 0, 30,
                       tzinfo=datetime.timezone(2 * HOUR)),
     (T0, datetime.datetime(2024, 4, 1, tzinfo=UTC))),
])
def test_month_window(now, expected):
    begin, end = timeutils.month_window(now)
    assert (begin, end) == expected
    assert begin.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize('value, text', [
    (D('1.5000000000000000000000000000'), '1.5'),
    (D('100.0000'), '100'),
    (D('0E-28'), '0'),
    (D('1E+3'), '1000'),
    (D('-2.50'), '-2.5'),
    (D('-0.0000005000000000000000000000'), '-5E-7'),
    (D('120.5E+1'), '1205'),
    (D('999999999999.9999999999999999999999999999'),
     '999999999999.9999999999999999999999999999'),
    (D('12345678901234567890123456789012345678901234567890'),
     '12345678901234567890123456789012345678901234567890'),
])
def test_normalize_decimal(value, text):
    assert str(v2.normalize_decimal(value)) == text
    assert v2.normalize_decimal(value) == value


def test_normalize_decimal_ignores_the_callers_context():
    with decimal.localcontext(decimal.Context(prec=3)):
        assert str(v2.normalize_decimal(D('1.23456000'))) == '1.23456'
    assert v2.normalize_decimal(None) is None


@pytest.mark.parametrize('custom_fields, expected', [
    (None, [('qty', 'qty'), ('rate', 'price')]),
    ('', [('qty', 'qty'), ('rate', 'price')]),
    ('SUM(qty) AS qty, SUM(price) AS rate', [('qty', 'qty'),
                                             ('rate', 'price')]),
    ('sum(price) as cost', [('cost', 'price')]),
    ('SUM("qty")', [('qty', 'qty')]),
    ('SUM(rate) AS total_cost, SUM(qty) AS volume',
     [('total_cost', 'price'), ('volume', 'qty')]),
])
def test_parse_custom_fields(custom_fields, expected):
    fields = v2.parse_custom_fields(custom_fields)
    assert [(f.alias, f.source) for f in fields] == expected


@pytest.mark.parametrize('custom_fields', [
    'MAX(qty)', 'SUM(qty) AS a, SUM(price) AS a', 'SUM(qty) AS begin',
    'SUM(unit)', 'SUM(qty) AS "x y"', 'qty', 42,
])
def test_parse_custom_fields_refuses(custom_fields):
    with pytest.raises(v2.InvalidQuery):
        v2.parse_custom_fields(custom_fields)


def test_parse_groupby(storage):
    keys = storage.parse_groupby(
        ['type', 'project_id', 'time', 'time-d', 'day_of_the_year', 'id'])
    assert keys == [v2.GroupKey('type', 'type'),
                    v2.GroupKey('scope', 'project_id'),
                    v2.GroupKey('time'),
                    v2.GroupKey('label', 'day_of_the_year'),
                    v2.GroupKey('label', 'id')]
    assert storage.parse_groupby('type, time-y') == [
        v2.GroupKey('type', 'type'), v2.GroupKey('label', 'year')]
    assert storage.parse_groupby(None) == []
    assert storage.parse_groupby([]) == []


def test_parse_groupby_follows_the_scope_key():
    storage = Recorder(make_conf({('collect', 'scope_key'): 'domain_id'}))
    assert storage.parse_groupby(['domain_id', 'project_id']) == [
        v2.GroupKey('scope', 'domain_id'),
        v2.GroupKey('label', 'project_id')]


@pytest.mark.parametrize('groupby', [
    ['time-x'], ['time-'], ['a b'], ['x"y'], [''], [3], {'a': 1},
    ['$.a'], ['a' * 256],
])
def test_parse_groupby_refuses(storage, groupby):
    with pytest.raises(v2.InvalidQuery):
        storage.parse_groupby(groupby)


def test_retrieve_defaults_and_shapes_frames(storage):
    p1 = dataframe.DataPoint('u', 1, 2, {}, {})
    p2 = dataframe.DataPoint('u', 3, 4, {'a': 'b'}, {})
    storage.points = [(T0, T0 + HOUR, 'b', p1), (T0, T0 + HOUR, 'a', p2),
                      (T0 + HOUR, T0 + 2 * HOUR, 'a', p1)]
    result = storage.retrieve()
    (_, query, offset, limit), = storage.calls
    assert (query.begin, query.end) == timeutils.month_window()
    assert (query.types, query.scopes, query.labels) == (None, None, ())
    assert (offset, limit) == (0, 1000)
    assert result['total'] == 3
    first, second = result['dataframes']
    assert (first.start, dict(first.itertypes())) == (
        T0, {'a': [p2], 'b': [p1]})
    assert (second.start, dict(second.itertypes())) == (T0 + HOUR,
                                                        {'a': [p1]})


def test_query_normalisation(storage):
    paris = datetime.timezone(2 * HOUR)
    storage.retrieve(
        begin='2024-03-01T02:00:00+02:00',
        end=datetime.datetime(2024, 3, 2),
        metric_types=['a', 'b', 'a'],
        filters={'type': ['b', 'c'], 'project_id': 'p1',
                 'zone': ['z1', 2, 'z1'], 'flavor': 'm1'},
        offset=5, limit=7)
    (_, query, offset, limit), = storage.calls
    assert query == v2.Query(
        begin=T0, end=datetime.datetime(2024, 3, 2, tzinfo=UTC),
        types=('b',), scopes=('p1',),
        labels=(('flavor', ('m1',)), ('zone', ('z1', '2'))))
    assert query.begin.tzinfo is UTC
    assert (offset, limit) == (5, 7)
    storage.retrieve(begin=datetime.datetime(2024, 3, 1, 2, tzinfo=paris),
                     end=T0 + 2 * HOUR, metric_types='a', paginate=False,
                     offset=-3)
    query, offset, limit = storage.calls[-1][1:]
    assert (query.begin, query.types) == (T0, ('a',))
    assert (offset, limit) == (0, None)


@pytest.mark.parametrize('kwargs', [
    {'begin': T0 + HOUR, 'end': T0},
    {'begin': 'yesterday'},
    {'end': 3},
    {'filters': {'a': None}},
    {'filters': {'a': {'b': 1}}},
    {'filters': {'a': True}},
    {'filters': {'a b': 'c'}},
    {'filters': 'a=b'},
    {'metric_types': 3},
    {'offset': 1.5},
    {'limit': 0},
    {'limit': True},
])
def test_retrieve_refuses(storage, kwargs):
    with pytest.raises(v2.InvalidQuery):
        storage.retrieve(**kwargs)
    assert storage.calls == []


def test_total_shapes_rows(storage):
    storage.count = 7
    storage.rows = [('p1', T0, T0 + HOUR, None, D('1.50'), D('2.000'))]
    result = storage.total(groupby=['project_id', 'time', 'id'], begin=T0,
                           end=T0 + 24 * HOUR, offset=2, limit=1)
    assert result == {'total': 7, 'results': [{
        'begin': T0, 'end': T0 + HOUR, 'qty': D('1.5'), 'rate': D('2'),
        'project_id': 'p1', 'id': None}]}
    assert list(result['results'][0]) == [
        'begin', 'end', 'qty', 'rate', 'project_id', 'id']
    assert str(result['results'][0]['rate']) == '2'
    _, _, keys, fields, offset, limit = storage.calls[0]
    assert keys[1] == v2.GroupKey('time')
    assert fields == v2.DEFAULT_FIELDS
    assert (offset, limit) == (2, 1)


def test_total_without_time_uses_the_query_window(storage):
    storage.rows = [('a', D(1), D(2))]
    result = storage.total(groupby=['type'], begin=T0, end=T0 + HOUR,
                           custom_fields='SUM(qty) AS q')
    assert result['results'] == [
        {'begin': T0, 'end': T0 + HOUR, 'q': D(1), 'type': 'a'}]


@pytest.mark.parametrize('groupby', [['qty'], ['rate'], ['begin']])
def test_total_refuses_keys_clashing_with_columns(storage, groupby):
    with pytest.raises(v2.InvalidQuery):
        storage.total(groupby=groupby)


def test_delete_keeps_open_ends(storage):
    storage.delete()
    storage.delete(end=T0, filters={'project_id': ['a', 'b'], 'type': 'x'})
    assert [call[1] for call in storage.calls] == [
        v2.Query(), v2.Query(end=T0, types=('x',), scopes=('a', 'b'))]


def test_push_checks_frames_and_skips_empty_pushes(storage):
    empty = dataframe.DataFrame(T0, T0 + HOUR)
    frame = dataframe.DataFrame(T0, T0 + HOUR, {
        'a': [dataframe.DataPoint('u', 1, 1, {}, {})]})
    storage.push([])
    storage.push([empty])
    assert storage.calls == []
    storage.push(frame, 'p1')
    storage.push([empty, frame])
    assert storage.calls == [('push', [frame], 'p1'),
                             ('push', [empty, frame], None)]
    with pytest.raises(v2.InvalidData):
        storage.push([frame, {'period': {}}])


def test_replace_defaults_to_delete_then_push(storage):
    frame = dataframe.DataFrame(T0, T0 + HOUR, {
        'a': [dataframe.DataPoint('u', 1, 1, {}, {})]})
    storage.replace(frame, 'p1')
    storage.replace(dataframe.DataFrame(T0, T0 + HOUR), 'p1')
    delete = ('delete', v2.Query(begin=T0, end=T0 + HOUR, scopes=('p1',)))
    assert storage.calls == [delete, ('push', [frame], 'p1'), delete]
    with pytest.raises(v2.InvalidQuery):
        storage.replace(frame, None)


def test_get_storage_builds_the_configured_backend(tmp_path):
    conf = make_conf({
        ('database', 'connection'): f'sqlite:///{tmp_path}/db.sqlite'})
    backend = ck_storage.get_storage(conf)
    assert isinstance(backend, ck_sqlalchemy.SQLAlchemyStorage)
    assert backend.conf is conf
    assert str(backend.engine.url) == f'sqlite:///{tmp_path}/db.sqlite'
    conf.set_override('connection', f'sqlite:///{tmp_path}/other.sqlite',
                      'storage_sqlalchemy')
    assert ck_storage.get_storage(conf).engine.url.database.endswith(
        'other.sqlite')


def test_get_storage_names_an_unknown_backend():
    conf = make_conf({('storage', 'backend'): 'nope'})
    with pytest.raises(RuntimeError, match="'nope'"):
        ck_storage.get_storage(conf)


def test_sqlalchemy_storage_refuses_other_postgresql_drivers():
    conf = make_conf({('storage_sqlalchemy', 'connection'):
                      'postgresql+psycopg2://user@localhost/db'})
    with pytest.raises(v2.StorageError, match='psycopg'):
        ck_sqlalchemy.SQLAlchemyStorage(conf)


def test_the_storage_keeps_an_engine_of_its_own_database(tmp_path,
                                                         monkeypatch):
    # [storage_sqlalchemy] connection names the engine's database in other
    # words (a relative path): the engine given is the one to use.
    monkeypatch.chdir(tmp_path)
    conf = make_conf({('storage_sqlalchemy', 'connection'):
                      'sqlite:///rated.sqlite'})
    engine = db.create_engine(f'sqlite:///{tmp_path}/rated.sqlite')
    assert ck_sqlalchemy.SQLAlchemyStorage(conf, engine).engine is engine
    other = db.create_engine(f'sqlite:///{tmp_path}/other.sqlite')
    kept = ck_sqlalchemy.SQLAlchemyStorage(conf, other).engine
    assert kept is not other
    assert kept.url.database == str(tmp_path / 'rated.sqlite')
