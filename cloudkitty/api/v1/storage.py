"""``/v1/storage/dataframes``: rated data in the v1 frame format."""

import datetime
import decimal

import pecan
from pecan import rest
import wsmeext.pecan as wsme_pecan
from wsme import types as wtypes

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty.api.v1 import report
from cloudkitty.policies import storage as storage_policies


class RatedResource(wtypes.Base):
    """One rated point: its type (``service``), labels, quantity, price."""

    service = wtypes.text
    desc = {wtypes.text: wtypes.text}
    volume = decimal.Decimal
    rating = decimal.Decimal


class DataFrame(wtypes.Base):
    """The points of one scope in one period."""

    begin = datetime.datetime
    end = datetime.datetime
    tenant_id = wtypes.text
    resources = [RatedResource]


class DataFrameCollection(wtypes.Base):
    dataframes = [DataFrame]


def _v1_frames(frames, scope_key):
    """Split each frame by scope, in order of appearance."""
    for frame in frames:
        by_scope = {}
        for type_, point in frame.iterpoints():
            scope = point.desc.get(scope_key)
            by_scope.setdefault(scope, []).append(RatedResource(
                service=type_,
                desc={key: str(value) for key, value in point.desc.items()},
                volume=point.qty, rating=point.price))
        for scope, resources in by_scope.items():
            yield DataFrame(begin=report.naive_utc(frame.start),
                            end=report.naive_utc(frame.end),
                            tenant_id=scope, resources=resources)


class DataFramesController(rest.RestController):

    @wsme_pecan.wsexpose(DataFrameCollection, datetime.datetime,
                         datetime.datetime, wtypes.text, wtypes.text)
    def get_all(self, begin=None, end=None, tenant_id=None,
                resource_type=None):
        """Rated frames of [begin, end); a non-admin only sees their own."""
        context = pecan.request.context
        utils.authorize(storage_policies.LIST_DATAFRAMES,
                        {'project_id': tenant_id or context.project_id})
        scope_key = pecan.request.backends.conf.collect.scope_key
        filters = utils.own_scope_filters(
            {scope_key: tenant_id} if tenant_id else None)
        if filters is None:
            return DataFrameCollection(dataframes=[])
        begin, end = utils.month_window(begin, end)
        try:
            result = pecan.request.backends.storage.retrieve(
                begin=begin, end=end, filters=filters,
                metric_types=resource_type, paginate=False)
        except ValueError as exc:
            raise errors.BadRequest(str(exc)) from None
        return DataFrameCollection(dataframes=list(
            _v1_frames(result['dataframes'], scope_key)))


class StorageController(rest.RestController):

    dataframes = DataFramesController()
