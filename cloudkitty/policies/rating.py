"""Rules of the rating modules (``/v1/rating``, ``/v2/rating``)."""

from cloudkitty.policies import base

LIST_MODULES = 'rating:list_modules'
GET_MODULE = 'rating:get_module'
UPDATE_MODULE = 'rating:update_module'
RELOAD_MODULES = 'rating:module_discovery'
MODULE_CONFIG = 'rating:module_config'
QUOTE = 'rating:quote'

_RULES = [
    base.documented(LIST_MODULES, base.RULE_ADMIN_API,
                    'List the rating modules.',
                    ('GET', '/v1/rating/modules'),
                    ('GET', '/v2/rating/modules')),
    base.documented(GET_MODULE, base.RULE_ADMIN_API,
                    'Show one rating module.',
                    ('GET', '/v1/rating/modules/{module_id}'),
                    ('GET', '/v2/rating/modules/{module_id}')),
    base.documented(UPDATE_MODULE, base.RULE_ADMIN_API,
                    'Enable or disable a rating module, or change its '
                    'priority.',
                    ('PUT', '/v1/rating/modules/{module_id}'),
                    ('PUT', '/v2/rating/modules/{module_id}')),
    base.documented(RELOAD_MODULES, base.RULE_ADMIN_API,
                    'Load the rating modules installed since the API '
                    'started.',
                    ('GET', '/v1/rating/reload_modules')),
    base.documented(MODULE_CONFIG, base.RULE_ADMIN_API,
                    'Manage the rules of a rating module through its own '
                    'API.',
                    ('GET', '/v1/rating/module_config/{module_id}/...')),
    # A token scoped to no project carries a project_id of None, which
    # "project_id:%(project_id)s" would match against a target built from
    # that same token: "not project_id:None" rules such tokens out.
    base.documented(QUOTE,
                    f'{base.RULE_ADMIN_API} or (rule:{base.PROJECT_READER} '
                    'and not project_id:None)',
                    'Price resources with the current rules: an '
                    'administrator, or a reader (or member) of the project '
                    'the token is scoped to.',
                    ('POST', '/v1/rating/quote')),
]


def list_rules():
    return _RULES
