"""Rules of ``/v1/report``."""

from cloudkitty.policies import base

LIST_TENANTS = 'report:list_tenants'
GET_SUMMARY = 'report:get_summary'
GET_TOTAL = 'report:get_total'

_RULES = [
    base.documented(LIST_TENANTS, base.RULE_ADMIN_API,
                    'List the scopes that have rated data.',
                    ('GET', '/v1/report/tenants')),
    base.documented(GET_SUMMARY, base.RULE_ADMIN_OR_PROJECT_READER,
                    'Summarize the rated data of a project, or of every '
                    'project (administrators).',
                    ('GET', '/v1/report/summary')),
    base.documented(GET_TOTAL, base.RULE_ADMIN_OR_PROJECT_READER,
                    'Total the rated data of a project, or of every '
                    'project (administrators).',
                    ('GET', '/v1/report/total')),
]


def list_rules():
    return _RULES
