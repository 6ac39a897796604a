"""Configuration options, one module per option group (or a few related).

Every module exposes its option lists, ``register_opts(conf)`` and
``list_opts()``; :func:`register_all` registers every group on the
``ConfigOpts`` it is given, from the one list of modules in
:mod:`cloudkitty.conf.opts` that also feeds oslo-config-generator.
keystoneauth's options (:mod:`cloudkitty.conf.keystoneauth`) are listed
for the generator but registered only by the client that reads them, so
that a process reaching no OpenStack service does not import keystoneauth.
Nothing here touches a global at import time.
"""

from cloudkitty.conf import opts


def register_all(conf):
    """Register every option group of the service on ``conf``
    (:func:`cloudkitty.conf.opts.register_opts`); return it."""
    opts.register_opts(conf)
    return conf
