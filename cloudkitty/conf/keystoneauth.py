"""keystoneauth's options in the groups that reach an OpenStack service.

``[collector_gnocchi]``, ``[fetcher_gnocchi]`` and ``[fetcher_keystone]``
take keystoneauth's ``auth_type`` and ``auth_section`` (then the options of
the plugin named) and its session options (TLS, timeout). They are listed
with their group for oslo-config-generator (:func:`list_opts`) but not
registered with the group's own options: :mod:`cloudkitty.keystone_auth`
registers them when it builds a client of that group. keystoneauth (and
requests, os-service-types...: about 6 MiB) is thus imported only by the
processes that reach such a service, not by an API worker.
"""


def list_opts():
    """New instances of keystoneauth's common auth options and session
    options, for one group of :func:`cloudkitty.conf.opts.list_opts`."""
    # Imported here, not at the top: see the module's docstring.
    from keystoneauth1 import loading

    return loading.get_auth_common_conf_options() + \
        loading.get_session_conf_options()
