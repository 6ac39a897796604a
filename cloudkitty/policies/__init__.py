"""Default access rules of the API, in code (oslo.policy).

Each resource has its module holding its rule names as constants and its
defaults; :func:`list_rules` gathers them for the enforcer and for the
``oslopolicy-sample-generator`` (entry point ``oslo.policy.policies``).
A ``policy.yaml`` (``[oslo_policy] policy_file``) overrides any default.
"""

import itertools

from oslo_policy import policy

from cloudkitty.policies import base
from cloudkitty.policies import collector
from cloudkitty.policies import dataframes
from cloudkitty.policies import info
from cloudkitty.policies import rating
from cloudkitty.policies import report
from cloudkitty.policies import scope
from cloudkitty.policies import storage
from cloudkitty.policies import summary
from cloudkitty.policies import task

_MODULES = (base, collector, dataframes, info, rating, report, scope,
            storage, summary, task)


def list_rules():
    """Every default rule of the service, base rules first."""
    return list(itertools.chain.from_iterable(
        module.list_rules() for module in _MODULES))


def make_enforcer(conf):
    """Return an ``oslo_policy.policy.Enforcer`` over ``conf`` with our defaults.

    The enforcer registers the ``[oslo_policy]`` options on ``conf`` and
    reads ``policy.yaml`` (if any) on first use.
    """
    enforcer = policy.Enforcer(conf)
    enforcer.register_defaults(list_rules())
    return enforcer
