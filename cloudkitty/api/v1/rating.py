"""``/v1/rating``: rating modules, their own configuration APIs."""

import collections.abc
import datetime
import importlib

import pecan
from pecan import rest
import voluptuous
import webob
import wsmeext.pecan as wsme_pecan
from wsme import types as wtypes

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty import dataframe
from cloudkitty.policies import rating as rating_policies


class CloudkittyModule(wtypes.Base):
    """A rating module; ``enabled`` and ``priority`` are what PUT changes."""

    module_id = wtypes.wsattr(wtypes.text, mandatory=False)
    description = wtypes.wsattr(wtypes.text, mandatory=False)
    enabled = wtypes.wsattr(bool, mandatory=False)
    hot_config = wtypes.wsattr(bool, mandatory=False, name='hot-config')
    priority = wtypes.wsattr(wtypes.IntegerType(
        minimum=1, maximum=utils.MAX_PRIORITY), mandatory=False)

    @classmethod
    def from_module(cls, module):
        return cls(module_id=module.module_name,
                   description=module.description, enabled=module.enabled,
                   hot_config=module.hot_config, priority=module.priority)


class CloudkittyModuleCollection(wtypes.Base):
    modules = [CloudkittyModule]


class ModulesController(rest.RestController):

    @wsme_pecan.wsexpose(CloudkittyModuleCollection)
    def get_all(self):
        utils.authorize(rating_policies.LIST_MODULES)
        return CloudkittyModuleCollection(modules=[
            CloudkittyModule.from_module(module)
            for module in pecan.request.backends.rating_modules.all()])

    @wsme_pecan.wsexpose(CloudkittyModule, wtypes.text)
    def get_one(self, module_id):
        utils.authorize(rating_policies.GET_MODULE)
        return CloudkittyModule.from_module(utils.rating_module(module_id))

    @wsme_pecan.wsexpose(None, wtypes.text, body=CloudkittyModule,
                         status_code=302)
    def put(self, module_id, module):
        """Change ``enabled``/``priority``; answers 302 to the module's URL."""
        utils.authorize(rating_policies.UPDATE_MODULE)
        target = utils.rating_module(module_id)
        if module.enabled is not wtypes.Unset and module.enabled is not None:
            target.set_state(module.enabled)
        if module.priority is not wtypes.Unset and \
                module.priority is not None:
            target.set_priority(module.priority)
        pecan.response.location = pecan.request.path_url


class ModuleConfigController:
    """``/v1/rating/module_config/<module>/...``: the module's own API.

    A rating module exposes it with its ``config_controller`` attribute: a
    dotted path ``'package.module:Class'`` (imported here, on the first
    request, so that the processor loading the module never imports the
    API's code), a Pecan controller class (instantiated per request) or an
    instance.
    """

    @pecan.expose()
    def _lookup(self, module_id, *remainder):
        utils.authorize(rating_policies.MODULE_CONFIG)
        controller = utils.rating_module(module_id).config_controller
        if controller is None:
            raise errors.Conflict(
                f"Rating module '{module_id}' has no configuration API.")
        if isinstance(controller, str):
            controller = _resolve(controller)
        if isinstance(controller, type):
            controller = controller()
        # A list: Pecan compares the remainder with [""] (a trailing slash).
        return controller, list(remainder)


def _resolve(path):
    """The object a ``'package.module:name'`` path names."""
    module_name, _, name = path.partition(':')
    return getattr(importlib.import_module(module_name), name)


def _labels(value):
    if not isinstance(value, collections.abc.Mapping) or \
            not all(isinstance(key, str) for key in value):
        raise voluptuous.Invalid('expected an object')
    return dict(value)


_QUOTE_SCHEMA = voluptuous.Schema({
    voluptuous.Required('resources'): voluptuous.All([{
        voluptuous.Required('service'): voluptuous.All(
            str, voluptuous.Length(min=1)),
        voluptuous.Required('volume'): dataframe.decimal_number,
        voluptuous.Optional('desc', default=dict): _labels,
    }], voluptuous.Length(min=1, msg='expected at least one resource')),
})


def _quote_frame(resources, period):
    """The frame to price: one point per resource, from now on.

    A ``desc`` holding ``groupby`` and/or ``metadata`` gives both; any other
    ``desc`` (what Horizon sends) is the point's metadata.
    """
    start = datetime.datetime.now(datetime.timezone.utc).replace(
        microsecond=0)
    frame = dataframe.DataFrame(start,
                                start + datetime.timedelta(seconds=period))
    for index, resource in enumerate(resources):
        desc = resource['desc']
        if 'groupby' in desc or 'metadata' in desc:
            try:
                groupby = _labels(desc.get('groupby') or {})
                metadata = _labels(desc.get('metadata') or {})
            except voluptuous.Invalid:
                raise errors.BadRequest(
                    f'resources[{index}].desc: groupby and metadata must be '
                    'objects') from None
        else:
            groupby, metadata = {}, desc
        frame.add_point(dataframe.DataPoint(
            None, resource['volume'], 0, groupby, metadata),
            resource['service'])
    return frame


def _within_quote_limit(body, limit):
    """Refuse (413) a quote of more than ``limit`` resources, before any
    is validated: pricing costs time and memory for each."""
    resources = body.get('resources')
    if isinstance(resources, list) and len(resources) > limit:
        raise errors.TooLarge(
            f'A quote prices at most {limit} resources ([api] '
            f'max_quote_resources); this one has {len(resources)}.')


class RatingController(rest.RestController):

    _custom_actions = {'reload_modules': ['GET'], 'quote': ['POST']}

    modules = ModulesController()
    module_config = ModuleConfigController()

    @wsme_pecan.wsexpose(None, status_code=204)
    def reload_modules(self):
        """Load the rating modules installed since the API started."""
        utils.authorize(rating_policies.RELOAD_MODULES)
        pecan.request.backends.rating_modules.reload()

    @pecan.expose(content_type='application/json')
    def quote(self):
        """The price of resources with the current rules, as a JSON number."""
        utils.authorize(rating_policies.QUOTE)
        backends = pecan.request.backends
        body = utils.json_body()
        _within_quote_limit(body, backends.conf.api.max_quote_resources)
        body = utils.validate(_QUOTE_SCHEMA, body, 'key')
        price = backends.quote(_quote_frame(body['resources'],
                                            backends.conf.collect.period))
        return webob.Response(content_type='application/json',
                              charset='utf-8', text=dataframe.dumps(price))
