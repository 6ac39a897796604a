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


def _state(name):
    """The state of collector ``name``: a collector whose state was never
    set reads disabled, as upstream has it."""
    utils.authorize(collector_policies.GET_STATE, {})
    return CollectorInfos(
        name=name,
        enabled=pecan.request.backends.collector_states.get_state(name))


def _set_state(name, infos):
    """Enable or disable the collector ``name`` (from the path, the query
    string or ``infos``, the body)."""
    utils.authorize(collector_policies.UPDATE_STATE, {})
    name = utils.one_id('name', name, _body_value(infos, 'name'))
    enabled = _body_value(infos, 'enabled')
    if enabled in (None, wtypes.Unset):
        raise errors.BadRequest("'enabled' is required in the body.")
    pecan.request.backends.collector_states.set_state(name, enabled)
    return _state(name)


class StatesController(rest.RestController):
    """``/v1/collector/states[/{name}]`` (``?name=`` also names it)."""

    @wsme_pecan.wsexpose(CollectorInfos, wtypes.text)
    def get_all(self, name=None):
        """State of the collector named in the query string."""
        return _state(utils.one_id('name', name))

    @wsme_pecan.wsexpose(CollectorInfos, wtypes.text)
    def get_one(self, name):
        return _state(name)

    @wsme_pecan.wsexpose(CollectorInfos, wtypes.text, body=CollectorInfos)
    def put(self, name=None, infos=None):
        """Enable or disable a collector."""
        return _set_state(name, infos)


class CollectorStateController(rest.RestController):
    """``/v1/collector/{name}/states``: the other path of a collector's
    state, which upstream serves too."""

    def __init__(self, name):
        self._name = name

    @wsme_pecan.wsexpose(CollectorInfos)
    def get_all(self):
        return _state(self._name)

    @wsme_pecan.wsexpose(CollectorInfos, body=CollectorInfos)
    def put(self, infos=None):
        return _set_state(self._name, infos)


class CollectorController(rest.RestController):

    mappings = MappingsController()
    states = StatesController()

    @pecan.expose()
    def _lookup(self, name, *remainder):
        if list(remainder) in (['states'], ['states', '']):
            return CollectorStateController(name), []
        return None
