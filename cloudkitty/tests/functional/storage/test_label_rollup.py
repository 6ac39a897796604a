"""The sums by day and label of the sqlalchemy backend
(``rated_label_days``), on SQLite, PostgreSQL and MariaDB.

Totals grouped or filtered by labels read the rolled days there and the
rest from the points: every answer is checked against the points alone
and against sums computed here, after a push, after the upkeep rolled the
days, after a replace and deletes in rolled days, and after the
retention; the upkeep rolls only days before today, a bounded number at a
time; a write running while its day is rolled is not lost.
"""

import contextlib
import datetime
import decimal
import threading

import pytest
import sqlalchemy as sa

from cloudkitty import dataframe
from cloudkitty.storage import v2
from cloudkitty.storage.v2.sqlalchemy import maintenance
from cloudkitty.storage.v2.sqlalchemy import reads

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
T0 = datetime.datetime(2024, 3, 1, tzinfo=UTC)
# Three days, each partly: hours 0, 5, 10 ... 70.
HOURS = range(0, 72, 5)
FLAVORS = ('small', 'big', 'huge')


def frame(start, scope, scale=1):
    """Points of two types and three resources in the hour from
    ``start``; ``scope`` None: without project_id. Their labels carry the
    day (as the collectors' time keys do), and values of several
    scales."""
    hour = int((start - T0) / HOUR)
    groupby = {} if scope is None else {'project_id': scope}
    groupby['day_of_the_year'] = start.strftime('%-j')
    points = {}
    for t, type_ in enumerate(('instance', 'volume')):
        points[type_] = [dataframe.DataPoint(
            'u', decimal.Decimal(f'{r + 1}.{hour}'),
            decimal.Decimal(f'0.0{scale}{hour}{r}{t}') * (r + 1),
            {**groupby, 'id': f'{scope}-{r}', 'flavor': FLAVORS[r],
             'user': f'u{(r + hour) % 3}'}, {'image': f'i{r}'})
            for r in range(3)]
    return dataframe.DataFrame(start, start + HOUR, points)


def fill(storage):
    for hour in HOURS:
        start = T0 + hour * HOUR
        for scope in ('p1', 'p2'):
            storage.push([frame(start, scope)], scope)
        storage.push([frame(start, None)])


# (groupby, other arguments of total)
CASES = [
    (['flavor'], {}),
    (['type', 'project_id', 'user'], {}),
    (['id'], {'metric_types': 'volume'}),
    (['nobody', 'flavor'], {}),
    (['project_id', 'flavor'], {'filters': {'project_id': 'p2'}}),
    (['type'], {'filters': {'flavor': 'big'}}),
    (['user'], {'filters': {'flavor': ['small', 'huge'],
                            'project_id': ['p1', 'p2']}}),
    ([], {'filters': {'user': 'u1'}}),
]
WINDOWS = [
    (T0, T0 + 3 * DAY),                      # day edges
    (T0 + 5 * HOUR, T0 + 70 * HOUR),         # mid-day to mid-day
    (T0 + DAY, T0 + 2 * DAY),                # one day
    (T0 + 30 * HOUR, T0 + 40 * HOUR),        # inside a day
    (T0 - DAY, T0 + 2 * DAY + 3 * HOUR),
]


@contextlib.contextmanager
def points_only():
    """Totals read from the points alone, as before the sums by label."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reads.Reader, '_label_sums', lambda self, conn, query: (
            reads._POINTS, self.conditions(query)))
        yield


def in_python(storage, groupby, begin, end, metric_types=None, filters=None):
    """``{group values: (qty, rate)}`` summed here from the points."""
    found = storage.retrieve(begin=begin, end=end, metric_types=metric_types,
                             filters=filters, paginate=False)['dataframes']
    sums = {}
    for frame_ in found:
        for type_, point in frame_.iterpoints():
            labels = {**point.metadata, **point.groupby, 'type': type_}
            key = tuple(labels.get(name) for name in groupby)
            qty, rate = sums.get(key, (0, 0))
            sums[key] = (qty + point.qty, rate + point.price)
    return sums


def check(storage):
    """Every case and window: the same answer as the points alone (whole,
    and a page of it) and as the sums computed here."""
    for groupby, options in CASES:
        for begin, end in WINDOWS:
            arguments = dict(groupby=groupby, begin=begin, end=end, **options)
            answer = storage.total(paginate=False, **arguments)
            page = storage.total(offset=1, limit=2, **arguments)
            with points_only():
                assert storage.total(paginate=False, **arguments) == answer
                assert storage.total(offset=1, limit=2, **arguments) == page
            expected = in_python(storage, groupby, begin, end, **options)
            assert {tuple(row[name] for name in groupby): (
                row['qty'], row['rate']) for row in answer['results']} == {
                key: tuple(map(v2.normalize_decimal, value))
                for key, value in expected.items()}, (groupby, begin, end)
            assert answer['total'] == len(expected)


def label_days(storage):
    """``{day: rows}`` of ``rated_label_days``, and ``{day: rolled}`` of
    the daily rows (true when all are)."""
    with storage.engine.connect() as conn:
        rows = {str(day)[:10]: count for day, count in conn.execute(
            sa.text('SELECT day, COUNT(*) FROM rated_label_days '
                    'GROUP BY day'))}
        rolled = {}
        for day, flag in conn.execute(sa.text(
                'SELECT day, rolled FROM rated_daily_totals')):
            day = str(day)[:10]
            rolled[day] = rolled.get(day, True) and bool(flag)
    return rows, rolled


def test_totals_by_labels_match_the_points_through_every_change(storage):
    fill(storage)
    check(storage)
    upkeep = storage.maintain(T0 + 2 * DAY + 12 * HOUR)
    assert upkeep.rolled == [datetime.date(2024, 3, 1),
                             datetime.date(2024, 3, 2)]
    rows, rolled = label_days(storage)
    # 2 scopes, 2 types, 3 resources, 3 users a day.
    assert rows == {'2024-03-01': 36, '2024-03-02': 36}
    assert upkeep.label_rows == 72
    assert rolled == {'2024-03-01': True, '2024-03-02': True,
                      '2024-03-03': False}
    check(storage)
    # A scope's period stored again in a rolled day: read from the points
    # until rolled again.
    storage.replace(frame(T0 + 25 * HOUR, 'p1', scale=7), 'p1')
    assert label_days(storage)[1]['2024-03-02'] is False
    check(storage)
    # A period stored for the first time in a rolled day (a scope that was
    # late): a push, nothing replaced; read from the points until rolled.
    storage.maintain(T0 + 2 * DAY + 12 * HOUR)
    assert label_days(storage)[1]['2024-03-02'] is True
    storage.push([frame(T0 + 26 * HOUR, 'p1', scale=3)], 'p1')
    assert label_days(storage)[1]['2024-03-02'] is False
    check(storage)
    # Deleted by label in a rolled day, then rolled again.
    storage.maintain(T0 + 2 * DAY + 12 * HOUR)
    storage.delete(begin=T0, end=T0 + DAY, filters={'flavor': 'big'})
    check(storage)
    assert storage.maintain(T0 + 2 * DAY + 12 * HOUR).rolled == [
        datetime.date(2024, 3, 1)]
    check(storage)
    # A scope's whole day deleted: its daily rows go, with their sums by
    # label; the day stays rolled.
    storage.delete(begin=T0 + DAY, end=T0 + 2 * DAY,
                   filters={'project_id': 'p2'})
    assert label_days(storage) == ({'2024-03-01': 24, '2024-03-02': 18}, {
        '2024-03-01': True, '2024-03-02': True, '2024-03-03': False})
    check(storage)
    # The retention deletes the sums of the days it deletes (before March
    # 2nd; on PostgreSQL, the partitions a day long keep the cutoff there).
    storage.conf.set_override('retention', 1, 'storage')
    storage.conf.set_override('partition_interval', 'day',
                              'storage_sqlalchemy')
    upkeep = storage.maintain(T0 + 2 * DAY)
    assert upkeep.batches + len(upkeep.dropped) > 0
    assert upkeep.rolled == []
    assert label_days(storage)[0] == {'2024-03-02': 18}
    check(storage)


def test_the_rolled_days_are_read_from_the_sums_by_label(storage):
    fill(storage)
    storage.maintain(T0 + 3 * DAY)
    arguments = dict(groupby=['flavor'], begin=T0, end=T0 + 3 * DAY)
    before = storage.total(**arguments)
    with storage.engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE rated_label_days SET price = price + 1000 WHERE day = "
            ":day AND type = 'volume' AND label_id = (SELECT MIN(label_id) "
            "FROM rated_label_days WHERE day = :day)"),
            {'day': datetime.date(2024, 3, 2)})
    after = storage.total(**arguments)
    assert sum(r['rate'] for r in after['results']) == sum(
        r['rate'] for r in before['results']) + 1000
    with points_only():
        assert storage.total(**arguments) == before


def test_maintain_rolls_days_before_today_oldest_first_a_few_at_a_time(
        storage):
    fill(storage)
    now = T0 + 2 * DAY + 23 * HOUR
    assert maintenance.roll(storage.engine, storage._writer, now.date(),
                            size=1) == ([datetime.date(2024, 3, 1)], 36)
    assert label_days(storage)[1] == {
        '2024-03-01': True, '2024-03-02': False, '2024-03-03': False}
    check(storage)
    assert storage.maintain(now).rolled == [datetime.date(2024, 3, 2)]
    assert storage.maintain(now).rolled == []
    assert label_days(storage)[1]['2024-03-03'] is False
    assert storage.maintain(now + HOUR).rolled == [datetime.date(2024, 3, 3)]
    check(storage)


@pytest.mark.parametrize('pause', ['before its daily sums', 'after them'])
def test_a_write_while_its_day_is_rolled_is_not_lost(
        storage, monkeypatch, pause):
    """A push into March 2nd pauses, its points inserted, before or after
    it updates the day's daily sums (then holding them) while the upkeep
    rolls the day: either the roll waits and sums its points, or the push
    marks the day not rolled once the roll is done."""
    fill(storage)
    storage.maintain(T0 + DAY + 12 * HOUR)  # March 1st only
    paused, resume = threading.Event(), threading.Event()
    store_totals = storage._writer.store_totals

    def pausing(conn, totals):
        if pause.startswith('before'):
            paused.set()
            resume.wait(30)
        store_totals(conn, totals)
        if pause.startswith('after'):
            paused.set()
            resume.wait(30)
    monkeypatch.setattr(storage._writer, 'store_totals', pausing)
    push = threading.Thread(target=storage.push, args=(
        [frame(T0 + 26 * HOUR, 'p1', scale=9)], 'p1'))
    push.start()
    assert paused.wait(30)
    upkeeps = []
    roll = threading.Thread(target=lambda: upkeeps.append(
        storage.maintain(T0 + 2 * DAY + 12 * HOUR)))
    roll.start()
    roll.join(2)
    if pause.startswith('after'):
        assert roll.is_alive()  # waits for the push's daily rows
    resume.set()
    push.join(30)
    roll.join(30)
    assert upkeeps[0].rolled == [datetime.date(2024, 3, 2)]
    check(storage)
    rolled = label_days(storage)[1]['2024-03-02']
    if storage.engine.dialect.name != 'sqlite' and pause.startswith(
            'before'):
        # Rolled without the push's points, then marked not rolled.
        assert rolled is False
    again = [] if rolled else [datetime.date(2024, 3, 2)]
    assert storage.maintain(T0 + 2 * DAY + 12 * HOUR).rolled == again
    check(storage)
