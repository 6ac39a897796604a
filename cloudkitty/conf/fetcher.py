"""``[fetcher]`` and ``[fetcher_source]``: where the scopes come from."""

from oslo_config import cfg

FETCHER_OPTS = [
    cfg.StrOpt('backend', default='source',
               help='Fetcher (entry point of cloudkitty.fetchers) that lists '
                    'the scopes to rate.'),
]


FETCHER_SOURCE_OPTS = [
    cfg.ListOpt('sources', default=[],
                help='Static list of scope ids to rate.'),
]


def register_opts(conf):
    """Register ``[fetcher]``, ``[fetcher_source]`` on ``conf``."""
    conf.register_opts(FETCHER_OPTS, group='fetcher')
    conf.register_opts(FETCHER_SOURCE_OPTS, group='fetcher_source')


def list_opts():
    return [('fetcher', FETCHER_OPTS), ('fetcher_source', FETCHER_SOURCE_OPTS)]
