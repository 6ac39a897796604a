"""``/v2/rating/modules``: the rating modules, enabled or not, and their order."""

import pecan
import voluptuous

from cloudkitty.api import utils
from cloudkitty.api.v2 import base
from cloudkitty.policies import rating as rating_policies


def _view(module):
    return {'module_id': module.module_name,
            'description': module.description,
            'enabled': module.enabled,
            'hot_config': module.hot_config,
            'priority': module.priority}


@base.expose(rating_policies.LIST_MODULES)
def list_modules():
    return {'modules': [_view(module) for module in
                        pecan.request.backends.rating_modules.all()]}


@base.expose(rating_policies.GET_MODULE)
def get_module(module_id):
    return _view(utils.rating_module(module_id))


@base.expose(rating_policies.UPDATE_MODULE, body={
    voluptuous.Optional('enabled'): base.single(base.boolean),
    voluptuous.Optional('priority'): base.single(
        base.integer(1, utils.MAX_PRIORITY)),
})
def update_module(module_id, *, enabled=None, priority=None):
    """Enable or disable a module, or change its priority."""
    module = utils.rating_module(module_id)
    if enabled is not None:
        module.set_state(enabled)
    if priority is not None:
        module.set_priority(priority)
    return None, 204
