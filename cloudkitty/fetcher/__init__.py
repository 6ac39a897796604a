"""Fetchers: what lists the scopes to rate.

A fetcher answers one question, :meth:`BaseFetcher.get_tenants`: the ids of
the scopes (projects, domains, whatever ``[collect] scope_key`` names) that
the processor rates. Fetchers are stevedore plugins of the namespace
``cloudkitty.fetchers``, chosen by ``[fetcher] backend``: :mod:`.keystone`
(projects), :mod:`.gnocchi` (attribute values of resources),
:mod:`.prometheus` (label values of a metric) and :mod:`.source` (a static
list) ship with the service.
"""

import abc

from oslo_config import cfg
from stevedore import driver

from cloudkitty import signatures

FETCHERS_NAMESPACE = 'cloudkitty.fetchers'


class FetchError(Exception):
    """The fetcher could not list the scopes (source unreachable...)."""


class BaseFetcher(metaclass=abc.ABCMeta):
    """Base of every fetcher.

    :param conf: the service's ``oslo_config.cfg.ConfigOpts`` (default
        ``cfg.CONF``, which third-party fetchers written from the published
        guide read)
    """

    name = 'cloudkitty_base_fetcher'

    def __init__(self, conf=None):
        self.conf = conf if conf is not None else cfg.CONF

    @abc.abstractmethod
    def get_tenants(self):
        """Return the list of scope ids to rate (``[str]``).

        :raises FetchError: the scopes could not be listed
        """


def get_fetcher(conf):
    """Build the fetcher named by ``[fetcher] backend``.

    Fetchers are given ``conf=conf``; a third-party fetcher whose constructor
    takes no ``conf`` (written for ``cfg.CONF``) is built without arguments.
    """
    fetcher_class = driver.DriverManager(FETCHERS_NAMESPACE,
                                         conf.fetcher.backend,
                                         invoke_on_load=False).driver
    if signatures.takes_keyword(fetcher_class, 'conf', unknown=True):
        return fetcher_class(conf=conf)
    return fetcher_class()
