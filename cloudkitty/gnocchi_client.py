"""Gnocchi clients for the ``gnocchi`` collector and fetcher.

:func:`build_client` turns an option group of
:func:`cloudkitty.conf.collector_gnocchi.connection_opts` into a
gnocchiclient ``Client`` over a keystoneauth session: Gnocchi's basic
authentication (``gnocchi_user`` at ``gnocchi_endpoint``) or Keystone (the
keystoneauth plugin of the group, the endpoint from the catalog). Every
failed call raises one of :data:`ERRORS`.
"""

from gnocchiclient import auth as g_auth
from gnocchiclient import client as g_client
from gnocchiclient import exceptions as g_exc
from keystoneauth1 import exceptions as ks_exc
from requests import adapters

from cloudkitty import keystone_auth

#: What a call to Gnocchi raises when it fails: gnocchiclient's errors
#: (HTTP errors, connection failures) and keystoneauth's (authentication,
#: catalog).
ERRORS = (g_exc.ClientException, ks_exc.ClientException)

#: Gnocchi's answer to an aggregation over resources none of which has the
#: metric (one of :data:`ERRORS`).
MetricNotFound = g_exc.MetricNotFound

#: Retries of a connection that failed, 0.5 s then 1 s apart: enough for a
#: restarting server, short enough for a collect cycle.
CONNECT_RETRIES = 2


def describe(error):
    """The text of one of :data:`ERRORS` for a message; Keystone's refusal
    of the credentials (keystoneauth's 401, Gnocchi's is gnocchiclient's)
    says so."""
    if isinstance(error, ks_exc.Unauthorized):
        return f'Keystone refused the credentials: {error}'
    return str(error)


class GnocchiConfigError(ValueError):
    """The option group cannot make a client; the message names the
    option."""


def build_client(conf, group):
    """Build the Gnocchi client of option group ``group`` of ``conf``.

    :returns: ``(client, source)``; ``source`` names the Gnocchi for log
        and error messages: its URL with basic authentication, the
        Keystone whose catalog has it with keystone
    :raises GnocchiConfigError: no ``gnocchi_endpoint`` with basic
        authentication, no keystoneauth ``auth_type`` with keystone
    """
    options = conf[group]
    if options.gnocchi_auth_type == 'basic':
        if not options.gnocchi_endpoint:
            raise GnocchiConfigError(
                f'[{group}] gnocchi_endpoint is required with '
                'gnocchi_auth_type = basic')
        auth = g_auth.GnocchiBasicPlugin(user=options.gnocchi_user,
                                         endpoint=options.gnocchi_endpoint)
        source = f'Gnocchi at {options.gnocchi_endpoint}'
    else:
        auth = keystone_auth.load_auth(conf, group)
        if auth is None:
            raise GnocchiConfigError(
                f'[{group}] auth_type (or an auth_section holding it) is '
                'required with gnocchi_auth_type = keystone')
        # Named: the Keystone, where credentials and catalog can fail.
        keystone_url = getattr(auth, 'auth_url', None)
        where = f' at {keystone_url}' if keystone_url else ''
        source = (f'Gnocchi of the Keystone{where} (catalog interface '
                  f'{options.interface}, region {options.region_name})')
    session = keystone_auth.load_session(conf, group, auth)
    for prefix in ('http://', 'https://'):
        session.session.mount(prefix, adapters.HTTPAdapter(
            pool_maxsize=options.http_pool_maxsize))
    client = g_client.Client('1', session=session, adapter_options={
        'interface': options.interface,
        'region_name': options.region_name,
        'connect_retries': CONNECT_RETRIES,
    })
    return client, source
