"""The one list of every option group, for registration and for the
generators."""

from cloudkitty.conf import api
from cloudkitty.conf import collect
from cloudkitty.conf import collector_file
from cloudkitty.conf import collector_gnocchi
from cloudkitty.conf import collector_meta
from cloudkitty.conf import collector_prometheus
from cloudkitty.conf import database
from cloudkitty.conf import default
from cloudkitty.conf import fetcher
from cloudkitty.conf import fetcher_gnocchi
from cloudkitty.conf import fetcher_keystone
from cloudkitty.conf import fetcher_prometheus
from cloudkitty.conf import orchestrator
from cloudkitty.conf import output
from cloudkitty.conf import pyscripts
from cloudkitty.conf import storage

_MODULES = (default, api, collect, collector_file, collector_gnocchi,
            collector_meta, collector_prometheus,
            database, fetcher, fetcher_gnocchi, fetcher_keystone,
            fetcher_prometheus, orchestrator, output,
            pyscripts, storage)


def list_opts():
    """``[(group, [opts])]``: every option, for oslo-config-generator."""
    return [item for module in _MODULES for item in module.list_opts()]


def register_opts(conf):
    """Register every group's options on ``conf``, except keystoneauth's
    (:mod:`cloudkitty.conf.keystoneauth`: registered with the client that
    reads them)."""
    for module in _MODULES:
        module.register_opts(conf)
