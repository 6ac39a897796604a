"""tools/mutants.py stays in step with the code it mutates.

Running the mutations takes minutes (``tox -e mutants``); what is checked
here is that each one still applies to the product as it is now, and
that the tests it names exist, so that a refactoring cannot quietly turn
the mutation check into one that errors out or tries nothing.
"""

import pytest

from cloudkitty.tests import scripts
from cloudkitty.tests.scripts import TOP


MUTANTS = scripts.load('tools/mutants.py')


@pytest.mark.parametrize('mutation', MUTANTS.MUTATIONS,
                         ids=lambda mutation: mutation.name)
def test_mutation_applies_once_and_names_existing_tests(mutation):
    text = (TOP / mutation.path).read_text()
    mutated = mutation.apply(text)
    assert mutated != text
    compile(mutated, mutation.path, 'exec')
    assert mutation.tests
    for test in mutation.tests:
        path, _, name = test.partition('::')
        assert (TOP / path).is_file(), test
        if name:
            assert f'def {name.split("[")[0]}(' in (TOP / path).read_text(), \
                test


def test_mutation_names_are_unique():
    names = [mutation.name for mutation in MUTANTS.MUTATIONS]
    assert len(names) == len(set(names))


def test_a_text_found_twice_is_refused():
    mutation = MUTANTS.Mutation('twice', '', 'x.py', 'a', 'b', ('t',))
    with pytest.raises(ValueError, match='occurs 2 times'):
        mutation.apply('a a')
