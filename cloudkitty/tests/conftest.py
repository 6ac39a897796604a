"""Settings shared by the whole suite."""

import hypothesis
import pytest

# tools/mutants.py runs the property tests with ``--hypothesis-profile
# mutants``: a mutation is caught by the first failing example, and the
# minimal one hypothesis would shrink it to is of no use there.
hypothesis.settings.register_profile('mutants', phases=[
    phase for phase in hypothesis.Phase if phase != hypothesis.Phase.shrink])

#: Tests marked ``slow`` (paths under cloudkitty/tests/): those that
#: install or start peer systems of their own (Keystone, Gnocchi, upstream
#: CloudKitty, PostgreSQL replicas), kill processors in a loop, or draw
#: hundreds of examples. ``pytest -m "not slow"`` leaves them out of a
#: quick run; CI runs everything.
SLOW = (
    'functional/keystone/',
    'functional/gnocchi/',
    'functional/upstream/',
    'functional/test_replica.py',
    'functional/storage_replica/',
    'functional/test_processor_crash.py',
    'functional/test_processor_coordination.py',
    'functional/test_processor_faults.py',
    'functional/prometheus/test_processor_outage.py',
    'functional/rating/test_pyscripts_boundary.py',
    'functional/rating/test_hashmap_validity_property.py',
    'functional/test_benchmarks.py',
    'functional/test_docs.py',
    'unit/rating/test_hashmap_property.py',
)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: starts peer systems or runs for minutes '
        '(cloudkitty/tests/conftest.py SLOW)')


def pytest_collection_modifyitems(items):
    for item in items:
        path = item.nodeid.partition('cloudkitty/tests/')[2]
        if path.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
