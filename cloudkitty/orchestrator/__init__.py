"""The processor: which scope, which period, and rating it.

- :mod:`.worker`: the scope worker, pure (collect -> rate -> skip -> store
  -> record), the time-state rules and reprocessing;
- :mod:`.skip`: skip expressions, compiled without ``eval``;
- :mod:`.lock`: per-scope tooz locks;
- :mod:`.processor`: start-up validation, the passes of the rating and
  reprocessing worker processes, their cotyledon services and
  :func:`~.processor.run_until_caught_up`;
- :mod:`.rpc`: scope resets and quotes from the API, over oslo.messaging.
"""
