"""Rules of ``/v2/scope``: where each scope's processing stands."""

from cloudkitty.policies import base

GET_STATE = 'scope:get_state'
RESET_STATE = 'scope:reset_state'
PATCH_STATE = 'scope:patch_state'
POST_STATE = 'scope:post_state'

_RULES = [
    base.documented(GET_STATE, base.RULE_ADMIN_API,
                    'List the state of scopes.',
                    ('GET', '/v2/scope')),
    base.documented(RESET_STATE, base.RULE_ADMIN_API,
                    'Reset the state of scopes: their data from the given '
                    'date on is deleted and rated again.',
                    ('PUT', '/v2/scope')),
    base.documented(PATCH_STATE, base.RULE_ADMIN_API,
                    'Change a scope: its keys, or whether it is active.',
                    ('PATCH', '/v2/scope')),
    base.documented(POST_STATE, base.RULE_ADMIN_API,
                    'Declare a scope.',
                    ('POST', '/v2/scope')),
]


def list_rules():
    return _RULES
