"""``/v1/storage/dataframes``: rated data in the v1 frame format.

One frame per stored point, as upstream answers: ``{"begin", "end",
"tenant_id", "resources": [{"service", "desc", "volume", "rating"}]}``,
the point's scope as ``tenant_id`` and its groupby and metadata merged as
``desc``. Quantities and prices are JSON strings, as v1 writes them; the
values of ``desc`` keep the JSON types they were stored with (``true``,
``1.0``, digit for digit). WSME can write no Decimal as a JSON number, so
this route writes its JSON itself.
"""

import pecan
from pecan import rest
import webob

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty.api.v1 import module_config as mc
from cloudkitty import dataframe
from cloudkitty.policies import storage as storage_policies
from cloudkitty import timeutils

_PARAMETERS = ('begin', 'end', 'tenant_id', 'resource_type')


def _parameters():
    """The query string's parameters (``None`` when absent), begin and end
    as datetimes; 400 for an unknown, repeated or malformed one."""
    query = pecan.request.GET
    unknown = sorted(set(query) - set(_PARAMETERS))
    if unknown:
        raise errors.BadRequest(
            f"unknown query parameter(s): {', '.join(unknown)}")
    params = {}
    for name in _PARAMETERS:
        values = query.getall(name)
        if len(values) > 1:
            raise errors.BadRequest(
                f"query parameter '{name}' is given {len(values)} times")
        value = values[0] if values and values[0] != '' else None
        if value is not None and name in ('begin', 'end'):
            try:
                value = utils.utc(value)
            except ValueError as exc:
                raise errors.BadRequest(
                    f"invalid query parameter '{name}': {exc}") from None
        params[name] = value
    return params


def _v1_frames(frames, scope_key):
    """One v1 frame per point, in the storage's order."""
    decimal_text = mc.DECIMAL.tobasetype
    for frame in frames:
        begin = timeutils.to_db(frame.start).isoformat()
        end = timeutils.to_db(frame.end).isoformat()
        for type_, point in frame.iterpoints():
            desc = point.desc
            yield {'begin': begin, 'end': end,
                   'tenant_id': desc.get(scope_key),
                   'resources': [{'service': type_, 'desc': desc,
                                  'volume': decimal_text(point.qty),
                                  'rating': decimal_text(point.price)}]}


class DataFramesController(rest.RestController):

    @pecan.expose(content_type='application/json')
    def get_all(self, **_query):
        """Rated points of [begin, end); a non-admin only sees their own.

        Query string: ``begin``, ``end``, ``tenant_id``, ``resource_type``
        (the points' type).
        """
        params = _parameters()
        tenant_id = params['tenant_id']
        context = pecan.request.context
        utils.authorize(storage_policies.LIST_DATAFRAMES,
                        {'project_id': tenant_id or context.project_id})
        scope_key = pecan.request.backends.conf.collect.scope_key
        filters = utils.own_scope_filters(
            {scope_key: tenant_id} if tenant_id else None)
        frames = []
        if filters is not None:
            begin, end = utils.month_window(params['begin'], params['end'])
            try:
                result = pecan.request.backends.storage.retrieve(
                    begin=begin, end=end, filters=filters,
                    metric_types=params['resource_type'], paginate=False)
            except ValueError as exc:
                raise errors.BadRequest(str(exc)) from None
            frames = result['dataframes']
        return webob.Response(
            content_type='application/json', charset='utf-8',
            text=dataframe.dumps({'dataframes': list(
                _v1_frames(frames, scope_key))}))


class StorageController(rest.RestController):

    dataframes = DataFramesController()
