"""WSGI entry points.

- :mod:`.api`: ``cloudkitty.wsgi.api:application``, the API for any WSGI
  server (``etc/systemd/cloudkitty-api.service`` runs it under gunicorn).
"""
