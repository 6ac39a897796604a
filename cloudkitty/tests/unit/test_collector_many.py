"""BaseCollector.retrieve_many: grouped, and one retrieve per scope."""

import datetime
import decimal

import pytest

from cloudkitty import collector
from cloudkitty import dataframe

UTC = datetime.timezone.utc
START = datetime.datetime(2024, 3, 1, 10, tzinfo=UTC)
END = START + datetime.timedelta(hours=1)
METRICS = {'metrics': {'cpu': {'unit': 'u', 'factor': '1/4',
                               'groupby': ['id']}}}
USAGE = {'a': [('vm1', 3)], 'b': [('vm2', 5), ('vm3', 7)], 'c': []}


class PerScope(collector.BaseCollector):
    """Answers from :data:`USAGE`, one scope per call (or every scope)."""

    collector_name = 'fake'

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []
        self.fail = set()

    def fetch_all(self, metric_name, start, end, project_id=None,
                  q_filter=None):
        self.calls.append((project_id, q_filter))
        if project_id in self.fail:
            raise collector.CollectError('fake', metric_name, project_id,
                                         'down')
        scopes = [project_id] if project_id is not None else list(USAGE)
        return [dataframe.DataPoint('u', qty, 0, {'id': id_,
                                                  'project_id': scope}, {})
                for scope in scopes for id_, qty in USAGE.get(scope, ())]


class Grouped(PerScope):
    grouped_collection = True


def make(cls):
    return cls(conf=METRICS, period=3600)


@pytest.mark.parametrize('cls, calls', [
    (PerScope, [('a', None), ('b', None), ('c', None), ('x', None)]),
    (Grouped, [(None, {'project_id': ['a', 'b', 'c', 'x']})]),
])
def test_same_answer_grouped_or_not(cls, calls):
    coll = make(cls)
    many = coll.retrieve_many('cpu', START, END, ['a', 'b', 'c', 'x', 'a'])
    assert coll.calls == calls
    # Scopes without data are absent; each value is what retrieve gives.
    assert list(many) == ['a', 'b']
    for scope in ('a', 'b'):
        assert many[scope] == make(cls).retrieve('cpu', START, END, scope)
    assert [p.qty for p in many['b'][1]] == [
        decimal.Decimal('1.25'), decimal.Decimal('1.75')]


def test_grouped_drops_the_scopes_not_asked_for():
    assert list(make(Grouped).retrieve_many('cpu', START, END, ['b'])) == \
        ['b']


def test_grouped_keeps_the_callers_filter():
    coll = make(Grouped)
    coll.retrieve_many('cpu', START, END, ['a'], q_filter={'id': 'vm1'})
    assert coll.calls == [(None, {'id': 'vm1', 'project_id': ['a']})]


def test_no_scope_no_call():
    coll = make(Grouped)
    assert coll.retrieve_many('cpu', START, END, []) == {}
    assert coll.calls == []


def test_a_failure_fails_the_call():
    coll = make(PerScope)
    coll.fail.add('b')
    with pytest.raises(collector.CollectError) as info:
        coll.retrieve_many('cpu', START, END, ['a', 'b'])
    assert info.value.scope == 'b'
