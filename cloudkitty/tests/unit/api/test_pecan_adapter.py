"""What :mod:`cloudkitty.api.pecan_adapter` relies on in Pecan, and that
Pecan's routing goes through the cache it installs."""

from importlib import metadata
import inspect
import sys

from packaging import requirements
from packaging import version
import pecan
from pecan import rest
import pytest
import webtest

from cloudkitty.api import pecan_adapter
from cloudkitty.tests.scripts import TOP


def _pecan_requirement():
    for line in (TOP / 'requirements.txt').read_text().splitlines():
        if line and not line.startswith('#'):
            requirement = requirements.Requirement(line)
            if requirement.name == 'pecan':
                return requirement
    raise AssertionError('pecan is not in requirements.txt')


def test_requirements_bound_pecan_to_the_checked_releases():
    requirement = _pecan_requirement()
    assert any(spec.operator == '<' for spec in requirement.specifier), \
        requirement
    assert version.Version(metadata.version('pecan')) in requirement.specifier


@pytest.mark.parametrize('module', pecan_adapter.PATCHED_MODULES,
                         ids=lambda module: module.__name__)
def test_each_patched_module_calls_getargspec_by_that_name(module):
    assert callable(module.getargspec)
    if module is not pecan_adapter.util:
        assert 'getargspec(' in inspect.getsource(module)


def test_no_pecan_module_calls_the_uncached_getargspec_per_request():
    pecan_adapter.remember_argspecs()
    uncached = pecan_adapter.util.getargspec.__wrapped__
    left = sorted(name for name, module in list(sys.modules.items())
                  if name.split('.')[0] == 'pecan' and
                  getattr(module, 'getargspec', None) is uncached)
    # pecan.decorators reads a signature once, when a handler is exposed.
    assert left == ['pecan.decorators']


class _Books(rest.RestController):

    @pecan.expose('json')
    def get_one(self, book_id):
        return {'id': book_id}


class _Root:
    books = _Books()


def test_routing_reads_each_signature_once():
    pecan_adapter.remember_argspecs()
    pecan_adapter.remember_argspecs()  # idempotent
    for module in pecan_adapter.PATCHED_MODULES:
        assert module.getargspec is pecan_adapter.util.getargspec
    app = webtest.TestApp(pecan.make_app(_Root()))
    assert app.get('/books/7').json == {'id': '7'}
    after_first = pecan_adapter.util.getargspec.cache_info()
    assert app.get('/books/8').json == {'id': '8'}
    after_second = pecan_adapter.util.getargspec.cache_info()
    assert after_second.misses == after_first.misses
    assert after_second.hits > after_first.hits


def test_an_unhashable_callable_is_inspected_each_time():
    pecan_adapter.remember_argspecs()

    class Unhashable:
        __hash__ = None

        def __call__(self, value):
            return value

    assert pecan_adapter.util.getargspec(Unhashable()).args == \
        ['self', 'value']


def test_content_types_are_those_pecan_expose_declares():
    assert pecan_adapter.content_types(_Books().get_one) == \
        ['application/json']

    class Page:
        @pecan.expose(content_type='text/html')
        @pecan.expose('json', content_type='application/json')
        def show(self):
            return {}

    assert pecan_adapter.content_types(Page().show) == \
        ['application/json', 'text/html']
    assert pecan_adapter.content_types(None) == []
