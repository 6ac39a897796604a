"""keystoneauth plugins from option groups, for the clients of OpenStack
services (the gnocchi collector and fetcher, the keystone fetcher)."""

from keystoneauth1 import loading as ks_loading


def load_auth(conf, group):
    """The keystoneauth plugin of option group ``group`` of ``conf``: from
    its own options, or from those of the group its ``auth_section``
    names; ``None`` when no ``auth_type`` is configured."""
    # keystoneauth reads auth_type in the group auth_section names, where
    # nothing may have registered it (keystone_authtoken outside the API):
    # this registers it there.
    ks_loading.register_auth_conf_options(conf, group)
    return ks_loading.load_auth_from_conf_options(conf, group)


def load_session(conf, group, auth):
    """The keystoneauth session of option group ``group`` of ``conf`` (its
    TLS and timeout options), authenticating with ``auth``."""
    # Listed with the group for the generator, registered only here
    # (cloudkitty.conf.keystoneauth).
    ks_loading.register_session_conf_options(conf, group)
    return ks_loading.load_session_from_conf_options(conf, group, auth=auth)
