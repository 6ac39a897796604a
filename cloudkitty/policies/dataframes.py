"""Rules of ``/v2/dataframes``."""

from cloudkitty.policies import base

GET = 'dataframes:get'
ADD = 'dataframes:add'

_RULES = [
    base.documented(GET, base.RULE_ADMIN_OR_PROJECT_READER,
                    'List rated data points; a non-administrator only sees '
                    'those of their own project.',
                    ('GET', '/v2/dataframes')),
    base.documented(ADD, base.RULE_ADMIN_API,
                    'Store rated data frames.',
                    ('POST', '/v2/dataframes')),
]


def list_rules():
    return _RULES
