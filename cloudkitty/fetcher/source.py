"""The ``source`` fetcher: a static list of scopes, ``[fetcher_source] sources``."""

from cloudkitty import fetcher


class SourceFetcher(fetcher.BaseFetcher):
    """Rate exactly the scopes listed in ``[fetcher_source] sources``."""

    name = 'source'

    def get_tenants(self):
        """Return ``[fetcher_source] sources`` without blanks or repeats."""
        scopes = (s.strip() for s in self.conf.fetcher_source.sources)
        return list(dict.fromkeys(s for s in scopes if s))
