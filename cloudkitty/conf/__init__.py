"""Configuration options, one module per option group.

Every module exposes ``OPTS`` (or several lists), ``register_opts(conf)`` and
``list_opts()``; :func:`register_all` registers every group on the
``ConfigOpts`` it is given. Nothing here touches a global at import time.
"""

from cloudkitty.conf import opts


def register_all(conf):
    """Register every option group of the service on ``conf``."""
    for group, options in opts.list_opts():
        # oslo.config's "DEFAULT" group is group None: registered under the
        # name, the options would be out of reach as conf.<option>.
        conf.register_opts(options, group=None if group == 'DEFAULT' else group)
    return conf
