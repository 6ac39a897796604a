"""``/v1/collector``: which collector gathers which service, and which
collectors are enabled (read by the meta collector)."""

import pecan
from pecan import rest
import wsmeext.pecan as wsme_pecan
from wsme import types as wtypes

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty.policies import collector as collector_policies


class ServiceToCollectorMapping(wtypes.Base):
    service = wtypes.text
    collector = wtypes.text


class ServiceToCollectorMappingCollection(wtypes.Base):
    mappings = [ServiceToCollectorMapping]


class CollectorInfos(wtypes.Base):
    name = wtypes.text
    enabled = bool


def _body_value(body, name):
    return getattr(body, name) if body is not None else None


class MappingsController(rest.RestController):

    @wsme_pecan.wsexpose(ServiceToCollectorMappingCollection, wtypes.text)
    def get_all(self, collector=None):
        """The mappings, of one collector if given."""
        utils.authorize(collector_policies.LIST_MAPPINGS, {})
        return ServiceToCollectorMappingCollection(mappings=[
            ServiceToCollectorMapping(**mapping) for mapping in
            pecan.request.backends.collector_mappings.get_all(collector)])

    @wsme_pecan.wsexpose(ServiceToCollectorMapping, wtypes.text)
    def get_one(self, service):
        utils.authorize(collector_policies.GET_MAPPING, {})
        mapping = pecan.request.backends.collector_mappings.get(service)
        if mapping is None:
            raise errors.NotFound(f"Service '{service}' is not mapped to a "
                                  'collector.')
        return ServiceToCollectorMapping(**mapping)

    @wsme_pecan.wsexpose(ServiceToCollectorMapping, wtypes.text, wtypes.text,
                         body=ServiceToCollectorMapping)
    def post(self, collector=None, service=None, mapping=None):
        """Map a service to a collector (replacing its previous mapping)."""
        utils.authorize(collector_policies.MANAGE_MAPPING, {})
        collector = utils.one_id('collector', collector,
                                 _body_value(mapping, 'collector'))
        service = utils.one_id('service', service,
                               _body_value(mapping, 'service'))
        return ServiceToCollectorMapping(
            **pecan.request.backends.collector_mappings.set(service,
                                                            collector))

    @wsme_pecan.wsexpose(None, wtypes.text, body=ServiceToCollectorMapping,
                         status_code=204)
    def delete(self, service=None, mapping=None):
        utils.authorize(collector_policies.MANAGE_MAPPING, {})
        service = utils.one_id('service', service,
                               _body_value(mapping, 'service'))
        if not pecan.request.backends.collector_mappings.delete(service):
            raise errors.NotFound(f"Service '{service}' is not mapped to a "
                                  'collector.')


class StatesController(rest.RestController):

    def _infos(self, name):
        return CollectorInfos(
            name=name,
            enabled=pecan.request.backends.collector_states.get_state(name))

    @wsme_pecan.wsexpose(CollectorInfos, wtypes.text)
    def get_all(self, name=None):
        """State of the collector named in the query string."""
        utils.authorize(collector_policies.GET_STATE, {})
        return self._infos(utils.one_id('name', name))

    @wsme_pecan.wsexpose(CollectorInfos, wtypes.text)
    def get_one(self, name):
        """State of a collector (never set: enabled)."""
        utils.authorize(collector_policies.GET_STATE, {})
        return self._infos(name)

    @wsme_pecan.wsexpose(CollectorInfos, wtypes.text, body=CollectorInfos)
    def put(self, name=None, infos=None):
        """Enable or disable a collector."""
        utils.authorize(collector_policies.UPDATE_STATE, {})
        name = utils.one_id('name', name, _body_value(infos, 'name'))
        enabled = _body_value(infos, 'enabled')
        if enabled in (None, wtypes.Unset):
            raise errors.BadRequest("'enabled' is required in the body.")
        pecan.request.backends.collector_states.set_state(name, enabled)
        return self._infos(name)


class CollectorController(rest.RestController):

    mappings = MappingsController()
    states = StatesController()
