"""Configuration options, one module per option group (or a few related).

Every module exposes its option lists, ``register_opts(conf)`` and
``list_opts()``; :func:`register_all` registers every group on the
``ConfigOpts`` it is given, from the one list in :mod:`cloudkitty.conf.opts`
that also feeds oslo-config-generator. Nothing here touches a global at
import time.
"""

from cloudkitty.conf import opts


def register_all(conf):
    """Register every option group of the service on ``conf``; return it."""
    for group, options in opts.list_opts():
        # oslo.config's "DEFAULT" group is group None: registered under the
        # name, the options would be out of reach as conf.<option>.
        conf.register_opts(options,
                           group=None if group == 'DEFAULT' else group)
    return conf
