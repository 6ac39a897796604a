"""Rules the resource rules are built from."""

from oslo_policy import policy

CONTEXT_IS_ADMIN = 'context_is_admin'
ADMIN_API = 'admin_api'
PROJECT_READER = 'project_reader'
ADMIN_OR_PROJECT_READER = 'admin_or_project_reader'

#: Check strings the resource modules use.
RULE_ADMIN_API = f'rule:{ADMIN_API}'
RULE_ADMIN_OR_PROJECT_READER = f'rule:{ADMIN_OR_PROJECT_READER}'
#: Anyone who got past authentication (keystonemiddleware in keystone mode).
RULE_ANY = '@'

_RULES = [
    policy.RuleDefault(
        CONTEXT_IS_ADMIN, 'role:admin',
        description='Who is an administrator: sees and manages every '
                    'scope.'),
    policy.RuleDefault(
        ADMIN_API, f'rule:{CONTEXT_IS_ADMIN}',
        description='Default rule of administrative operations.'),
    policy.RuleDefault(
        PROJECT_READER, 'role:reader and project_id:%(project_id)s',
        description='A reader (or member) of the project the request is '
                    'about.'),
    policy.RuleDefault(
        ADMIN_OR_PROJECT_READER,
        f'rule:{ADMIN_API} or rule:{PROJECT_READER}',
        description='Default rule of the operations on one scope\'s rated '
                    'data.'),
]


def list_rules():
    return _RULES


def documented(name, check_str, description, *operations):
    """A ``DocumentedRuleDefault`` for ``operations`` given as (method, path)."""
    return policy.DocumentedRuleDefault(
        name=name, check_str=check_str, description=description,
        operations=[{'method': method, 'path': path}
                    for method, path in operations])
