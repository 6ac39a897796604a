"""The period rules: which period of a scope is due, and when.

A period runs from its start for ``[collect] period`` seconds. A scope's
state is the start of the last period it stored (``None`` before the
first); :func:`next_period_start` says which period comes next and whether
it is due yet, :func:`due_periods` how many are due (the lag the health
checks and ``/metrics`` report), and :func:`next_reprocess_start` walks the
window of a reprocessing task.
"""

import datetime

from cloudkitty import timeutils


def next_period_start(last, period, wait_periods, now):
    """Start of the scope's next period to rate, or ``None`` if none is due.

    ``last`` is the start of the last period processed (``None`` if the
    scope never was). The candidate is ``last + period``, or the start of
    ``now``'s month (UTC) for a new scope. It is due iff
    ``candidate + wait_periods * period < now``, strictly, as the
    specification says. A period runs from its start for ``period``
    seconds, so with the default ``wait_periods`` of 2 a period is rated
    once a whole further period has passed after its end; with
    ``wait_periods`` 0 it would be rated while still running, which is why
    the default is not 0.

    The same rule guards a new scope's first period, so a scope first seen
    in the first hours of a month does not rate an unfinished period.
    """
    step = datetime.timedelta(seconds=period)
    candidate = timeutils.month_start(now) if last is None else last + step
    if candidate + wait_periods * step < now:
        return candidate
    return None


def due_periods(last, period, wait_periods, now):
    """How many periods of a scope are due at ``now`` and not yet rated.

    The periods counted are those :func:`next_period_start` would hand
    out one after the other if each were rated at once: the next one and
    every later one also due by the same rule. 0 exactly when
    :func:`next_period_start` returns ``None``. The newest due period
    starts ``(due_periods - 1) * period`` seconds after the next one.
    """
    first = next_period_start(last, period, wait_periods, now)
    if first is None:
        return 0
    step = datetime.timedelta(seconds=period)
    # Period k (from 0) is due iff first + (k + wait_periods) * step < now.
    room = now - first - wait_periods * step
    return -(-room // step)


def next_reprocess_start(start, end, current, period):
    """Next period start of a reprocessing task, or ``None`` once finished.

    ``start`` and ``end`` are the first and the last period starts of the
    window (both included); ``current`` is the last one reprocessed
    (``None`` before the first).
    """
    if current is None:
        candidate = start
    else:
        candidate = current + datetime.timedelta(seconds=period)
    return candidate if candidate <= end else None
