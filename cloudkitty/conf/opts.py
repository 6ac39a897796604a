"""The one list of every option, for registration and for the generators."""

from cloudkitty.conf import api
from cloudkitty.conf import collect
from cloudkitty.conf import collector_file
from cloudkitty.conf import database
from cloudkitty.conf import default
from cloudkitty.conf import fetcher
from cloudkitty.conf import orchestrator
from cloudkitty.conf import pyscripts
from cloudkitty.conf import storage

_MODULES = (default, api, collect, collector_file, database, fetcher,
            orchestrator, pyscripts, storage)


def list_opts():
    """``[(group, [opts])]`` for registration and oslo-config-generator."""
    return [item for module in _MODULES for item in module.list_opts()]
