"""``/v2/summary``: totals of rated data, grouped, filtered and paginated."""

import pecan
import voluptuous

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty.api.v2 import base
from cloudkitty.policies import summary as summary_policies

TIME_GROUPBY = ('time', 'time-d', 'time-w', 'time-m', 'time-y')
FORMATS = ('table', 'object')
#: Columns of every row, before the groupby keys.
FIXED_COLUMNS = ('begin', 'end', 'qty', 'rate')


def _groupby_key(value):
    if value.startswith('time') and value not in TIME_GROUPBY:
        raise voluptuous.Invalid(
            f"'{value}' is not a time grouping; use one of "
            f"{', '.join(TIME_GROUPBY)}")
    return value


def _response_format(value):
    if value not in FORMATS:
        raise voluptuous.Invalid(f"'{value}' is not a response format; use "
                                 f"{' or '.join(FORMATS)}")
    return value


def _table(groupby, results):
    columns = list(FIXED_COLUMNS)
    keys = list(results[0]) if results else list(groupby or [])
    columns += [key for key in keys if key not in columns]
    return columns, [[row.get(column) for column in columns]
                     for row in results]


@base.expose(summary_policies.GET_SUMMARY, query={
    voluptuous.Optional('begin'): base.single(base.date),
    voluptuous.Optional('end'): base.single(base.date),
    voluptuous.Optional('groupby'): base.multi(_groupby_key),
    voluptuous.Optional('filters'): base.key_values,
    voluptuous.Optional('custom_fields'): base.single(str),
    voluptuous.Optional('response_format'): base.single(_response_format),
    **base.PAGINATION,
})
def get_summary(*, begin=None, end=None, groupby=None, filters=None,
                custom_fields=None, response_format='table', offset=0,
                limit=100):
    """Totals over [begin, end); a non-admin only sees their project."""
    begin, end = utils.month_window(begin, end)
    filters = utils.own_scope_filters(filters)
    if filters is None:
        total = {'total': 0, 'results': []}
    else:
        metric_types = filters.pop('type', None)
        if isinstance(metric_types, str):
            metric_types = [metric_types]
        try:
            total = pecan.request.backends.storage.total(
                groupby=groupby, begin=begin, end=end,
                metric_types=metric_types, filters=filters,
                custom_fields=custom_fields, offset=offset, limit=limit,
                paginate=True)
        except ValueError as exc:
            raise errors.BadRequest(str(exc)) from None
    response = {'total': total['total']}
    if response_format == 'table':
        response['columns'], response['results'] = _table(
            groupby, total['results'])
    else:
        response['results'] = total['results']
    response['format'] = response_format
    return response
