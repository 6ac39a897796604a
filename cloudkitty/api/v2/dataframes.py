"""``/v2/dataframes``: rated data points, read and written."""

import pecan
from pecan import rest
import voluptuous

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty.api.v2 import base
from cloudkitty import dataframe
from cloudkitty.policies import dataframes as dataframes_policies


def _frames(value):
    if not isinstance(value, list) or not value:
        raise voluptuous.Invalid('expected a non-empty list of data frames')
    frames = []
    for index, frame in enumerate(value):
        if not isinstance(frame, dict):
            raise voluptuous.Invalid(f'data frame {index} is not an object')
        try:
            frames.append(dataframe.DataFrame.from_dict(frame))
        except (ValueError, TypeError) as exc:
            raise voluptuous.Invalid(f'data frame {index}: {exc}') from None
    return frames


class DataFramesController(rest.RestController):

    @base.expose(dataframes_policies.GET, query={
        voluptuous.Optional('begin'): base.single(base.date),
        voluptuous.Optional('end'): base.single(base.date),
        voluptuous.Optional('filters'): base.key_values,
        **base.PAGINATION,
    })
    def get_all(self, *, begin=None, end=None, filters=None, offset=0,
                limit=100):
        """Rated points of [begin, end), by frame; 404 when there are none."""
        begin, end = utils.month_window(begin, end)
        filters = utils.own_scope_filters(filters)
        if filters is None:
            raise errors.NotFound('No rated data: the caller has no project.')
        metric_types = filters.pop('type', None)
        try:
            result = pecan.request.backends.storage.retrieve(
                begin=begin, end=end, filters=filters,
                metric_types=metric_types, offset=offset, limit=limit,
                paginate=True)
        except ValueError as exc:
            raise errors.BadRequest(str(exc)) from None
        if result['total'] < 1:
            raise errors.NotFound('No rated data found for these filters.')
        return {'total': result['total'],
                'dataframes': [frame.as_dict() for frame in
                               result['dataframes']]}

    @base.expose(dataframes_policies.ADD,
                 body={voluptuous.Required('dataframes'): _frames})
    def post(self, *, dataframes):
        """Store rated frames."""
        try:
            pecan.request.backends.storage.push(dataframes)
        except ValueError as exc:
            raise errors.BadRequest(str(exc)) from None
        return None, 204
