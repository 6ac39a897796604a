"""Settings shared by the whole suite."""

import hypothesis

# tools/mutants.py runs the property tests with ``--hypothesis-profile
# mutants``: a mutation is caught by the first failing example, and the
# minimal one hypothesis would shrink it to is of no use there.
hypothesis.settings.register_profile('mutants', phases=[
    phase for phase in hypothesis.Phase if phase != hypothesis.Phase.shrink])
