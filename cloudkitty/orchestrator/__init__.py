"""The processor: which scope, which period, and rating it.

- :mod:`.processor`: start-up validation, the plan of each pass of the
  rating and reprocessing worker processes, their cotyledon services and
  :func:`~.processor.run_until_caught_up`;
- :mod:`.worker`: the scope worker, one call per scope-period (collect ->
  rate -> skip -> store -> record) with no mode of its own, and
  reprocessing;
- :mod:`.batch`: the periods rated, stored together (one transaction per
  round or bounded group), then recorded;
- :mod:`.periods`: the rules of which period is due, and when;
- :mod:`.shared`: a pass's usage collected once per metric and period for
  the scopes due in it (grouped collection);
- :mod:`.skip`: skip expressions, compiled without ``eval``;
- :mod:`.lock`: per-scope tooz locks;
- :mod:`.health`: counters and lag warnings of the workers;
- :mod:`.metrics`: the ``/metrics`` endpoint that adds them up;
- :mod:`.rpc`: the processors' side of the scope resets and quotes the API
  asks for (:mod:`cloudkitty.messaging`).
"""
