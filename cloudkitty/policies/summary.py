"""Rules of ``/v2/summary``."""

from cloudkitty.policies import base

GET_SUMMARY = 'summary:get_summary'

_RULES = [
    base.documented(GET_SUMMARY, base.RULE_ADMIN_OR_PROJECT_READER,
                    'Totals of rated data, grouped and filtered; a '
                    'non-administrator only sees their own project.',
                    ('GET', '/v2/summary')),
]


def list_rules():
    return _RULES
