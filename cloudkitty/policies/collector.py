"""Rules of ``/v1/collector``: service mappings and collector states."""

from cloudkitty.policies import base

LIST_MAPPINGS = 'collector:list_mappings'
GET_MAPPING = 'collector:get_mapping'
MANAGE_MAPPING = 'collector:manage_mapping'
GET_STATE = 'collector:get_state'
UPDATE_STATE = 'collector:update_state'

_RULES = [
    base.documented(LIST_MAPPINGS, base.RULE_ADMIN_API,
                    'List the service to collector mappings.',
                    ('GET', '/v1/collector/mappings')),
    base.documented(GET_MAPPING, base.RULE_ADMIN_API,
                    'Show the collector a service is mapped to.',
                    ('GET', '/v1/collector/mappings/{service}')),
    base.documented(MANAGE_MAPPING, base.RULE_ADMIN_API,
                    'Map a service to a collector, or remove the mapping.',
                    ('POST', '/v1/collector/mappings/{collector}/{service}'),
                    ('DELETE', '/v1/collector/mappings/{service}')),
    base.documented(GET_STATE, base.RULE_ADMIN_API,
                    'Show whether a collector is enabled.',
                    ('GET', '/v1/collector/states/{name}')),
    base.documented(UPDATE_STATE, base.RULE_ADMIN_API,
                    'Enable or disable a collector.',
                    ('PUT', '/v1/collector/states/{name}')),
]


def list_rules():
    return _RULES
