"""The ``gnocchi`` fetcher: scopes are attribute values of Gnocchi resources.

The scopes are the distinct values of ``[fetcher_gnocchi] scope_attribute``
among the resources of each of ``[fetcher_gnocchi] resource_types`` (all
revisions' current state, ended resources included: their last periods
may still be due). Resources without the attribute are ignored.
"""

from cloudkitty import fetcher
from cloudkitty import gnocchi_client


class GnocchiFetcher(fetcher.BaseFetcher):
    """List the scopes found in the Gnocchi of ``[fetcher_gnocchi]``.

    :raises FetchError: the options cannot make a client
    """

    name = 'gnocchi'

    def __init__(self, conf=None):
        super().__init__(conf)
        self._options = self.conf.fetcher_gnocchi
        try:
            self._client, self.source = gnocchi_client.build_client(
                self.conf, 'fetcher_gnocchi')
        except gnocchi_client.GnocchiConfigError as exc:
            raise fetcher.FetchError(f'gnocchi fetcher: {exc}') from None

    def get_tenants(self):
        """The distinct scope ids, sorted.

        :raises FetchError: Gnocchi failed, naming it and the resource type
        """
        attribute = self._options.scope_attribute
        scopes = set()
        for resource_type in self._options.resource_types:
            try:
                resources = self._client.resource.search(
                    resource_type=resource_type, details=True)
            except gnocchi_client.ERRORS as exc:
                raise fetcher.FetchError(
                    f'gnocchi fetcher: {self.source}: listing the '
                    f'{resource_type} resources: {exc}') from None
            scopes.update(r[attribute] for r in resources
                          if r.get(attribute))
        return sorted(scopes)
