"""Rules of ``/v2/task``: reprocessing of already rated periods."""

from cloudkitty.policies import base

SCHEDULE_REPROCESSING = 'schedule:task_reprocesses'
GET_REPROCESSING = 'schedule:get_task_reprocesses'

_RULES = [
    base.documented(SCHEDULE_REPROCESSING, base.RULE_ADMIN_API,
                    'Schedule the rating again of scopes over a window.',
                    ('POST', '/v2/task/reprocesses')),
    base.documented(GET_REPROCESSING, base.RULE_ADMIN_API,
                    'List reprocessing tasks.',
                    ('GET', '/v2/task/reprocesses'),
                    ('GET', '/v2/task/reprocesses/{scope_id}')),
]


def list_rules():
    return _RULES
