"""Rules of ``/v1/storage``."""

from cloudkitty.policies import base

LIST_DATAFRAMES = 'storage:list_data_frames'

_RULES = [
    base.documented(LIST_DATAFRAMES, base.RULE_ADMIN_OR_PROJECT_READER,
                    'List rated data frames; a non-administrator only sees '
                    'those of their own project.',
                    ('GET', '/v1/storage/dataframes')),
]


def list_rules():
    return _RULES
