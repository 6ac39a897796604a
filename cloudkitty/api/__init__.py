"""The REST API: one Pecan application serving v1 (WSME) and v2 (voluptuous).

- :mod:`.app`: the Pecan application and the paste pipeline around it;
- :mod:`.hooks`: everything the controllers use (the one place backends are
  built), handed to each request, and the request context;
- :mod:`.middleware`: the API's own WSGI middleware (body limit, path and
  query checks); :mod:`.authtoken`: the token check, loaded only by the
  ``keystone`` pipeline;
- :mod:`.root` and :mod:`.versions`: ``/`` and the version documents;
- :mod:`.v1` (WSME controllers) and :mod:`.v2` (one module per resource);
- :mod:`.utils`: access, scope, input and date helpers of both versions;
- :mod:`.errors`: what a controller raises for a 4xx or a 503;
- :mod:`.pecan_adapter` and :mod:`.wsme_adapter`: the one place each
  library's internals are touched, with the tests that watch them.
"""
