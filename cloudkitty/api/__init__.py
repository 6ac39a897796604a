"""The REST API: one Pecan application serving v1 (WSME) and v2 (voluptuous).

:mod:`cloudkitty.api.app` builds the application, :mod:`cloudkitty.api.hooks`
builds everything the controllers use (the one place backends are built)
and hands it to each request.
"""
