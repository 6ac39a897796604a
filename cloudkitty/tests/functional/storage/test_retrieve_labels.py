"""Pages of points filtered by labels (``retrieve`` with label filters) of
the sqlalchemy backend, on SQLite, PostgreSQL and MariaDB.

The rolled days of a window are counted from the sums by label
(``rated_label_days``) and their pages read from the batches those name;
the rest is walked along the points. Every page, at many offsets and
limits, filters (keys in groupby or metadata, several keys and values,
numbers) and windows (on day edges or not), must be the slice of the
matching points computed here from every point of the window, before the
days are rolled, once some are, and after a replace in a rolled day; its
``total`` is exact where documented, an upper bound elsewhere.
"""

import datetime
import decimal

from cloudkitty import dataframe
# The days, hours and windows of the totals by labels.
from cloudkitty.tests.functional.storage.test_label_rollup import DAY
from cloudkitty.tests.functional.storage.test_label_rollup import HOUR
from cloudkitty.tests.functional.storage.test_label_rollup import HOURS
from cloudkitty.tests.functional.storage.test_label_rollup import T0
from cloudkitty.tests.functional.storage.test_label_rollup import WINDOWS

RESOURCES = 4


def frame(start, scope, scale=1):
    """Points of two types and four resources in the hour from ``start``
    (``scope`` None: without project_id). ``user`` is in groupby,
    ``image`` in metadata, ``tier`` in metadata and, for one resource, in
    groupby too; ``n`` is a JSON number; labels carry the day."""
    hour = int((start - T0) / HOUR)
    points = {}
    for t, type_ in enumerate(('instance', 'volume')):
        points[type_] = []
        for r in range(RESOURCES):
            groupby = {'id': f'{scope}-{r}', 'user': f'u{(r + hour) % 3}',
                       'n': r, 'day_of_the_year': start.strftime('%-j')}
            if scope is not None:
                groupby['project_id'] = scope
            if r == 0:
                groupby['tier'] = 'gold'
            points[type_].append(dataframe.DataPoint(
                'u', decimal.Decimal(f'{r + 1}.{hour}'),
                decimal.Decimal(f'0.{scale}{hour}{r}{t}'), groupby,
                {'image': f'i{r}', 'tier': 'silver'}))
    return dataframe.DataFrame(start, start + HOUR, points)


def fill(storage):
    """Scopes p1 and p2 every hour; points without scope on March 1st
    only."""
    for hour in HOURS:
        start = T0 + hour * HOUR
        for scope in ('p1', 'p2'):
            storage.push([frame(start, scope)], scope)
        if hour < 24:
            storage.push([frame(start, None)])


FILTERS = [
    {'user': 'u1'},
    {'user': ['u0', 'u2'], 'image': 'i1'},
    {'image': 'i3'},
    {'n': '2'},
    {'n': ['0', '3'], 'user': 'u2'},
    {'tier': 'gold'},
    {'tier': 'silver'},
    {'user': 'nobody'},
    {'project_id': 'p1', 'user': 'u1'},
    {'project_id': ['p1', 'p2'], 'image': ['i0', 'i2']},
]
PAGES = [(0, 1), (0, 7), (3, 20), (25, 4), (50, 100), (60, 9), (500, 5)]


def flat(result):
    """The points of a ``retrieve`` result, in order."""
    return [(frame_.start, frame_.end, type_, point)
            for frame_ in result['dataframes']
            for type_, point in frame_.iterpoints()]


def label_text(point, key):
    """The text of label ``key`` of ``point``: in groupby, else in
    metadata."""
    value = point.groupby.get(key)
    if value is None:
        value = point.metadata.get(key)
    return None if value is None else str(value)


def matching(points, filters):
    """The ``points`` that ``filters`` select, filtered here."""
    wanted = {key: [values] if isinstance(values, str) else values
              for key, values in filters.items()}
    return [point for point in points if all(
        label_text(point[3], key) in values
        for key, values in wanted.items())]


def check(storage, exact_days=()):
    """Every filter, window, type and page: the slice of the points
    filtered here; ``total`` is an upper bound that is 0 only when no
    point matches, exact on the last page, and exact on every page for
    windows made of the whole days ``exact_days`` (rolled, no point
    without scope)."""
    for begin, end in WINDOWS:
        for types in (None, 'volume'):
            every = flat(storage.retrieve(begin=begin, end=end,
                                          metric_types=types,
                                          paginate=False))
            for filters in FILTERS:
                expected = matching(every, filters)
                arguments = dict(begin=begin, end=end, filters=filters,
                                 metric_types=types)
                whole = storage.retrieve(paginate=False, **arguments)
                assert flat(whole) == expected
                assert whole['total'] == len(expected)
                exact = begin.date() in exact_days and (
                    end - begin) % DAY == datetime.timedelta() and all(
                    (begin + i * DAY).date() in exact_days
                    for i in range((end - begin) // DAY))
                for offset, limit in PAGES:
                    page = storage.retrieve(offset=offset, limit=limit,
                                            **arguments)
                    where = (begin, end, types, filters, offset, limit)
                    assert flat(page) == expected[offset:offset + limit], (
                        where)
                    total = page['total']
                    assert total >= len(expected), where
                    assert (total == 0) == (not expected), where
                    if exact or offset + limit >= len(expected):
                        assert total == len(expected), where


def test_pages_by_labels_match_the_points_as_days_are_rolled(storage):
    fill(storage)
    check(storage)
    assert len(storage.maintain(T0 + 2 * DAY + 12 * HOUR).rolled) == 2
    # March 1st holds points without scope: walked, and not exact.
    check(storage, exact_days={datetime.date(2024, 3, 2)})
    # A scope's period stored again in a rolled day: walked until rolled
    # again.
    storage.replace(frame(T0 + 25 * HOUR, 'p1', scale=7), 'p1')
    check(storage)
    storage.maintain(T0 + 3 * DAY + 12 * HOUR)
    check(storage, exact_days={datetime.date(2024, 3, 2),
                               datetime.date(2024, 3, 3)})


def test_the_rolled_days_are_counted_from_the_sums_by_label(storage):
    """The count of a rolled day comes from its sums by label: a wrong
    one moves the pages of the days after it, and the total; not for a
    day holding points without scope (walked)."""
    fill(storage)
    storage.maintain(T0 + 3 * DAY + 12 * HOUR)
    scoped = dict(begin=T0, end=T0 + 3 * DAY, offset=30, limit=10,
                  filters={'project_id': 'p2', 'user': 'u0'})
    unscoped = dict(scoped, filters={'user': 'u0'})
    before = [storage.retrieve(**scoped), storage.retrieve(**unscoped)]
    with storage.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE rated_label_days SET points = points + 1 WHERE "
            "scope_id = 'p2' AND day = (SELECT MIN(day) FROM "
            "rated_daily_totals)")
    after = storage.retrieve(**scoped)
    assert after['total'] > before[0]['total']
    assert flat(after) != flat(before[0])
    assert storage.retrieve(**unscoped) == before[1]
