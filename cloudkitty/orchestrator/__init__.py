"""The processor: which scope, which period, and rating it.

- :mod:`.worker`: the scope worker, pure (collect -> rate -> skip -> store
  -> record) and the time-state rules;
- :mod:`.skip`: skip expressions, compiled without ``eval``;
- :mod:`.lock`: per-scope tooz locks;
- :mod:`.processor`: the loop of a processor worker process, the cotyledon
  service and :func:`~.processor.run_until_caught_up`.
"""
