"""Time: the one home of the datetime helpers every layer shares.

Inside the service a datetime is timezone-aware UTC; the database stores
naive UTC (:func:`to_db`, :func:`from_db`); a naive datetime handed in
means UTC.

Contents: :func:`utcnow`, :func:`parse`, :func:`to_db`, :func:`from_db`,
:func:`month_start`, :func:`month_window` and :func:`period_start`. This
module imports nothing of the project, so that every layer may use it.
"""

import datetime

from dateutil import parser as date_parser

UTC = datetime.timezone.utc

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)


def utcnow():
    """The current time, aware UTC."""
    return datetime.datetime.now(UTC)


def parse(value):
    """Return a timezone-aware datetime from a datetime or ISO 8601 string.

    Compact forms (``20190723T122810Z``) are accepted; a naive value is UTC
    (an aware one keeps its offset). Raises ``ValueError`` for anything
    else.
    """
    if isinstance(value, str):
        try:
            value = date_parser.isoparse(value)
        except (ValueError, OverflowError):
            raise ValueError(f'{value!r} is not an ISO 8601 date') from None
    if not isinstance(value, datetime.datetime):
        raise ValueError(f'{value!r} is not a date')
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def to_db(value):
    """Naive UTC datetime for storage (a naive one is taken as UTC;
    ``None`` stays ``None``)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def from_db(value):
    """Aware UTC datetime from a stored naive one (``None`` stays
    ``None``)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC)


def month_start(now):
    """Midnight UTC of the first day of ``now``'s month, aware."""
    now = now.astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_window(now=None):
    """``(start of the month, start of the next month)`` of ``now``
    (default: the current time); both aware UTC."""
    start = month_start(now or utcnow())
    return start, next_month(start)


def next_month(start):
    """The first of the month after ``start`` (a date, or a datetime, the
    first of a month), of the same type and time of day."""
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def period_start(moment, period):
    """The start of the collect period of ``period`` seconds (counted from
    the epoch) holding ``moment`` (aware)."""
    seconds = int((moment - _EPOCH).total_seconds())
    return _EPOCH + datetime.timedelta(seconds=seconds - seconds % period)
