"""Rated-data storage: the loader of the configured backend.

The interface is :class:`cloudkitty.storage.v2.BaseStorage`; backends are
entry points of ``cloudkitty.storage.v2.backends``.
"""

import inspect

from stevedore import driver
from stevedore import exception

NAMESPACE = 'cloudkitty.storage.v2.backends'


def _accepts_engine(cls):
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == 'engine' or p.kind == p.VAR_KEYWORD
               for p in parameters)


def get_storage(conf, engine=None):
    """Return the ``[storage] backend`` named in ``conf``, built with it.

    ``engine`` is the process's database engine, handed to backends whose
    constructor takes an ``engine`` keyword (the ``sqlalchemy`` backend);
    others, and every backend when it is ``None``, are built with ``conf``
    alone (the ``sqlalchemy`` backend then gets its engine from
    :func:`cloudkitty.db.get_engine`).

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
    if engine is not None and _accepts_engine(backend):
        return backend(conf, engine=engine)
    return backend(conf)
