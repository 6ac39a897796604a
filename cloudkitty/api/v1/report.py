"""``/v1/report``: totals and summaries of rated data."""

import datetime
import decimal

import pecan
from pecan import rest
import wsmeext.pecan as wsme_pecan
from wsme import types as wtypes

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty.api.v1 import module_config as mc
from cloudkitty.policies import report as report_policies
from cloudkitty import timeutils

#: What v1 groups by, and the storage groupby key each stands for.
GROUPBY = {'tenant_id': None, 'res_type': 'type'}
ALL = 'ALL'
_ZERO = decimal.Decimal(0)


class SummaryModel(wtypes.Base):
    """One row of a summary; keys not grouped by are ``"ALL"``. The rate
    is written as the storage sums it, without padding zeros
    (``"81.648"``), as upstream writes it."""

    begin = datetime.datetime
    end = datetime.datetime
    tenant_id = wtypes.text
    res_type = wtypes.text
    rate = mc.DECIMAL


class SummaryCollectionModel(wtypes.Base):
    summary = [SummaryModel]


def _scope_filters(rule, tenant_id, all_tenants):
    """Authorize ``rule`` on the scope asked for and return the filters.

    Without ``tenant_id`` the caller's project is meant, unless
    ``all_tenants`` asks for every scope. ``None`` means the caller may see
    no data (see :func:`cloudkitty.api.utils.own_scope_filters`).
    """
    if all_tenants:
        tenant_id = None
    elif not tenant_id:
        tenant_id = pecan.request.context.project_id
    utils.authorize(rule, {'project_id': tenant_id})
    scope_key = pecan.request.backends.conf.collect.scope_key
    return utils.own_scope_filters({scope_key: tenant_id} if tenant_id
                                   else None)


#: v1 reports prices only: summing quantities too would cost the storage
#: a second aggregate over every point.
_PRICE_ONLY = 'SUM(price) AS rate'


def _total(**kwargs):
    try:
        return pecan.request.backends.storage.total(
            custom_fields=_PRICE_ONLY, **kwargs)
    except ValueError as exc:
        raise errors.BadRequest(str(exc)) from None


def _storage_groupby(groupby):
    if not groupby:
        return []
    scope_key = pecan.request.backends.conf.collect.scope_key
    keys = [key.strip() for key in groupby.split(',') if key.strip()]
    unknown = [key for key in keys if key not in GROUPBY]
    if unknown:
        raise errors.BadRequest(
            f"Cannot group by {', '.join(unknown)}: groupby holds "
            f"{' and/or '.join(GROUPBY)}.")
    return [GROUPBY[key] or scope_key for key in keys]


class ReportController(rest.RestController):

    _custom_actions = {'tenants': ['GET'], 'total': ['GET'],
                       'summary': ['GET']}

    @wsme_pecan.wsexpose([wtypes.text], datetime.datetime, datetime.datetime)
    def tenants(self, begin=None, end=None):
        """The scopes with rated data in [begin, end)."""
        utils.authorize(report_policies.LIST_TENANTS, {})
        begin, end = utils.month_window(begin, end)
        scope_key = pecan.request.backends.conf.collect.scope_key
        result = _total(groupby=[scope_key], begin=begin, end=end,
                        paginate=False)
        return [row[scope_key] for row in result['results']
                if row.get(scope_key) is not None]

    @wsme_pecan.wsexpose(mc.DECIMAL, datetime.datetime,
                         datetime.datetime, wtypes.text, wtypes.text, bool)
    def total(self, begin=None, end=None, tenant_id=None, service=None,
              all_tenants=False):
        """The price of [begin, end), of one scope or of all."""
        filters = _scope_filters(report_policies.GET_TOTAL, tenant_id,
                                 all_tenants)
        begin, end = utils.month_window(begin, end)
        if filters is None:
            return _ZERO
        result = _total(begin=begin, end=end, filters=filters,
                        metric_types=service, paginate=False)
        if not result['results']:
            return _ZERO
        return result['results'][0].get('rate') or _ZERO

    @wsme_pecan.wsexpose(SummaryCollectionModel, datetime.datetime,
                         datetime.datetime, wtypes.text, wtypes.text,
                         wtypes.text, bool)
    def summary(self, begin=None, end=None, tenant_id=None, service=None,
                groupby=None, all_tenants=False):
        """Prices of [begin, end), grouped by tenant_id and/or res_type."""
        filters = _scope_filters(report_policies.GET_SUMMARY, tenant_id,
                                 all_tenants)
        begin, end = utils.month_window(begin, end)
        if filters is None:
            return SummaryCollectionModel(summary=[])
        scope_key = pecan.request.backends.conf.collect.scope_key
        result = _total(groupby=_storage_groupby(groupby), begin=begin,
                        end=end, filters=filters, metric_types=service,
                        paginate=False)
        summary = []
        for row in result['results']:
            summary.append(SummaryModel(
                begin=timeutils.to_db(utils.utc(row.get('begin') or begin)),
                end=timeutils.to_db(utils.utc(row.get('end') or end)),
                tenant_id=row.get(scope_key) or ALL,
                res_type=row.get('type') or ALL,
                rate=row.get('rate') or _ZERO))
        return SummaryCollectionModel(summary=summary)
