"""Which mappings are in force, against a plain reading of the rule.

hypothesis draws mappings whose windows start and end at, just before and
just after a period start or a quote's instant (fractions of a second
included), deletes some, and asks the database for the rules in force at
those instants: on every backend the answer must be the mappings with
``floor(start) <= floor(at) < floor(end)`` (or no end), not deleted (see
"When a rule is in force" in doc/source/admin/hashmap.rst).
"""

import datetime
import math

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from cloudkitty import db
from cloudkitty.rating.hash import db as hash_db
from cloudkitty.tests.functional.rating import hashmap_fixtures as fixtures

hashmap_url = fixtures.hashmap_url

#: A period start, and a quote's instant (with a fraction of a second).
PERIOD = datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.UTC)
QUOTE = PERIOD + datetime.timedelta(minutes=7, seconds=3,
                                    microseconds=250000)
OFFSETS = [datetime.timedelta(microseconds=m) for m in (
    -1000000, -500000, -1, 0, 1, 250000, 999999, 1000000, 3600000000)]
INSTANTS = st.builds(lambda base, offset: base + offset,
                     st.sampled_from([PERIOD, QUOTE]),
                     st.sampled_from(OFFSETS))
WINDOWS = st.tuples(INSTANTS, st.one_of(st.none(), INSTANTS),
                    st.booleans()).filter(
    lambda w: w[1] is None or w[1] > w[0])


def _second(moment):
    return math.floor(moment.timestamp())


def _in_force(start, end, deleted, at):
    return (not deleted and _second(start) <= _second(at)
            and (end is None or _second(at) < _second(end)))


@pytest.fixture(scope='module')
def engine(hashmap_url):
    """One engine per backend for all the examples."""
    engine = db.create_engine(hashmap_url)
    yield engine
    engine.dispose()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(windows=st.lists(WINDOWS, min_size=1, max_size=8),
       instants=st.lists(INSTANTS, min_size=1, max_size=6))
def test_the_database_answers_the_rules_in_force(engine, windows, instants):
    with engine.begin() as conn:
        for table in fixtures.TABLES:
            conn.exec_driver_sql(f'DELETE FROM {table}')
    store = hash_db.HashMapDB(engine, clock=fixtures.Clock(
        PERIOD - datetime.timedelta(days=1)))
    service = store.create_service('compute')['service_id']
    field = store.create_field(service, 'flavor')['field_id']
    for index, (start, end, deleted) in enumerate(windows):
        mapping = store.create_mapping(index + 1, field_id=field,
                                       value=f'v{index}', start=start,
                                       end=end)
        if deleted:
            store.delete_mapping(mapping['mapping_id'])
    for at in instants:
        expected = sorted(index + 1 for index, (start, end, deleted)
                          in enumerate(windows)
                          if _in_force(start, end, deleted, at))
        got = sorted(int(rule.cost) for rule in
                     store.load_rules(at).mappings)
        assert got == expected, at
