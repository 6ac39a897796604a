"""cloudkitty.timeutils: aware UTC inside, naive UTC in the database."""

import datetime

import pytest

from cloudkitty import timeutils

UTC = datetime.timezone.utc
PLUS_2 = datetime.timezone(datetime.timedelta(hours=2))


def test_utcnow_is_aware_utc():
    before = datetime.datetime.now(UTC)
    now = timeutils.utcnow()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.datetime.now(UTC)


@pytest.mark.parametrize('value, expected', [
    ('2026-01-05T10:00:00Z', datetime.datetime(2026, 1, 5, 10, tzinfo=UTC)),
    ('20190723T122810Z', datetime.datetime(2019, 7, 23, 12, 28, 10,
                                           tzinfo=UTC)),
    ('2026-01-05T10:00:00', datetime.datetime(2026, 1, 5, 10, tzinfo=UTC)),
    (datetime.datetime(2026, 1, 5, 10),
     datetime.datetime(2026, 1, 5, 10, tzinfo=UTC)),
    (datetime.datetime(2026, 1, 5, 12, tzinfo=PLUS_2),
     datetime.datetime(2026, 1, 5, 12, tzinfo=PLUS_2)),
])
def test_parse_takes_naive_as_utc_and_keeps_an_offset(value, expected):
    parsed = timeutils.parse(value)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize('value', ['yesterday', '', 1700000000, None,
                                   datetime.date(2026, 1, 5)])
def test_parse_refuses_what_is_not_a_date(value):
    with pytest.raises(ValueError):
        timeutils.parse(value)


def test_to_db_and_back():
    aware = datetime.datetime(2026, 1, 5, 12, 30, tzinfo=PLUS_2)
    stored = timeutils.to_db(aware)
    assert stored == datetime.datetime(2026, 1, 5, 10, 30)
    assert stored.tzinfo is None
    assert timeutils.from_db(stored) == aware
    assert timeutils.from_db(stored).tzinfo is UTC
    naive = datetime.datetime(2026, 1, 5, 10, 30)
    assert timeutils.to_db(naive) is naive
    assert timeutils.to_db(None) is None
    assert timeutils.from_db(None) is None


@pytest.mark.parametrize('now, window', [
    (datetime.datetime(2026, 1, 31, 23, 59, tzinfo=UTC),
     ((2026, 1, 1), (2026, 2, 1))),
    (datetime.datetime(2026, 12, 15, tzinfo=UTC),
     ((2026, 12, 1), (2027, 1, 1))),
    # 00:30 on March 1st at +02:00 is still February in UTC.
    (datetime.datetime(2026, 3, 1, 0, 30, tzinfo=PLUS_2),
     ((2026, 2, 1), (2026, 3, 1))),
])
def test_month_window(now, window):
    start, end = timeutils.month_window(now)
    assert (start, end) == tuple(datetime.datetime(*day, tzinfo=UTC)
                                 for day in window)
    assert timeutils.month_start(now) == start


def test_month_window_defaults_to_now():
    start, end = timeutils.month_window()
    assert start <= timeutils.utcnow() < end


@pytest.mark.parametrize('moment, period, expected', [
    (datetime.datetime(2026, 1, 5, 10, 59, 59, tzinfo=UTC), 3600,
     datetime.datetime(2026, 1, 5, 10, tzinfo=UTC)),
    (datetime.datetime(2026, 1, 5, 11, tzinfo=UTC), 3600,
     datetime.datetime(2026, 1, 5, 11, tzinfo=UTC)),
    (datetime.datetime(2026, 1, 5, 12, 10, tzinfo=PLUS_2), 86400,
     datetime.datetime(2026, 1, 5, tzinfo=UTC)),
])
def test_period_start_counts_periods_from_the_epoch(moment, period,
                                                    expected):
    assert timeutils.period_start(moment, period) == expected
