"""Rated-data storage: the loader of the configured backend.

The interface is :class:`cloudkitty.storage.v2.BaseStorage`; backends are
entry points of ``cloudkitty.storage.v2.backends``.
"""

from stevedore import driver
from stevedore import exception

from cloudkitty import signatures

NAMESPACE = 'cloudkitty.storage.v2.backends'


def get_storage(conf, engine=None, replica_reads=False):
    """Return the ``[storage] backend`` named in ``conf``, built with it.

    ``engine`` is the process's database engine and ``replica_reads``
    whether reads may go to a replica (the API's, not the processor's: a
    report must find every period already recorded as done); both are
    handed to backends whose constructor takes them (the ``sqlalchemy``
    backend), and others are built with ``conf`` alone.

    Raises ``RuntimeError`` naming the backend when no such entry point is
    installed (or it failed to import: the cause is logged by stevedore).
    """
    name = conf.storage.backend
    try:
        manager = driver.DriverManager(NAMESPACE, name, invoke_on_load=False)
    except exception.NoMatches:
        raise RuntimeError(f'unknown storage backend {name!r} (no entry '
                           f'point in {NAMESPACE})') from None
    backend = manager.driver
    kwargs = {}
    if engine is not None and signatures.takes_keyword(backend, 'engine'):
        kwargs['engine'] = engine
    if replica_reads and signatures.takes_keyword(backend, 'replica_reads'):
        kwargs['replica_reads'] = True
    return backend(conf, **kwargs)
