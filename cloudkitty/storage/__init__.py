"""Rated-data storage: the loader of the configured backend.

The interface is :class:`cloudkitty.storage.v2.BaseStorage`; backends are
entry points of ``cloudkitty.storage.v2.backends``.
"""

from stevedore import driver
from stevedore import exception

NAMESPACE = 'cloudkitty.storage.v2.backends'


def get_storage(conf):
    """Return the ``[storage] backend`` named in ``conf``, built with it.

    Raises ``RuntimeError`` naming the backend when no such entry point is
    installed (or it failed to import: the cause is logged by stevedore).
    """
    name = conf.storage.backend
    try:
        manager = driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                       invoke_args=(conf,))
    except exception.NoMatches:
        raise RuntimeError(f'unknown storage backend {name!r} (no entry '
                           f'point in {NAMESPACE})') from None
    return manager.driver
