"""``/v2/dataframes``: rated data points, read and written."""

import pecan
import voluptuous

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty.api.v2 import base
from cloudkitty import dataframe
from cloudkitty.policies import dataframes as dataframes_policies


#: What a frame and each of its points must hold, as upstream requires.
FRAME_KEYS = ('period', 'usage')
POINT_KEYS = ('vol', 'rating', 'groupby', 'metadata')


def _missing(what, mapping, keys):
    missing = [repr(key) for key in keys if key not in mapping]
    if len(missing) == 1:
        raise voluptuous.Invalid(f'{what}: {missing[0]} is missing')
    if missing:
        raise voluptuous.Invalid(
            f"{what}: {', '.join(missing[:-1])} and {missing[-1]} are "
            'missing')


def _check_keys(index, frame):
    """A 400 naming the first frame or point key missing."""
    _missing(f'data frame {index}', frame, FRAME_KEYS)
    usage = frame['usage']
    if not isinstance(usage, dict):
        return  # DataFrame.from_dict says what is wrong with it
    for type_, points in usage.items():
        if not isinstance(points, list):
            continue
        for number, point in enumerate(points):
            if isinstance(point, dict):
                _missing(f'data frame {index}, point {number} of '
                         f'{type_!r}', point, POINT_KEYS)


def _frames(value):
    if not isinstance(value, list) or not value:
        raise voluptuous.Invalid('expected a non-empty list of data frames')
    frames = []
    for index, frame in enumerate(value):
        if not isinstance(frame, dict):
            raise voluptuous.Invalid(f'data frame {index} is not an object')
        _check_keys(index, frame)
        try:
            frames.append(dataframe.DataFrame.from_dict(frame))
        except (ValueError, TypeError) as exc:
            raise voluptuous.Invalid(f'data frame {index}: {exc}') from None
    return frames


@base.expose(dataframes_policies.GET, query={
    voluptuous.Optional('begin'): base.single(base.date),
    voluptuous.Optional('end'): base.single(base.date),
    voluptuous.Optional('filters'): base.key_values,
    **base.PAGINATION,
})
def get_dataframes(*, begin=None, end=None, filters=None, offset=0,
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
def add_dataframes(*, dataframes):
    """Store rated frames."""
    try:
        pecan.request.backends.storage.push(dataframes)
    except ValueError as exc:
        raise errors.BadRequest(str(exc)) from None
    return None, 204
