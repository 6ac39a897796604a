"""The code map stays true: package docstrings list their contents, and
the architecture page names every part of the package by a module that
exists.

A newcomer finds their way from ``doc/source/developer/architecture.rst``
to a package's ``__init__`` docstring, and from there to the module that
owns what they look for. A module added without a line in its package's
docstring, or a page that names a module since moved, fails here.
"""

import ast
import importlib.util
import re

import pytest

from cloudkitty.tests.scripts import TOP

PACKAGE = TOP / 'cloudkitty'
ARCHITECTURE = TOP / 'doc/source/developer/architecture.rst'
# Not maps of code: the tests, the migration scripts (one per revision)
# and the option groups (one module per group, listed by conf/opts.py).
UNMAPPED = {'tests', 'migration', 'conf', 'policies', 'v1', 'v2', 'cli'}


def _packages():
    for init in sorted(PACKAGE.rglob('__init__.py')):
        if init.parent == PACKAGE:
            continue  # mapped by the architecture page (see below)
        relative = init.parent.relative_to(TOP)
        if not UNMAPPED.intersection(relative.parts):
            yield init.parent


def _contents(package):
    """The public modules and subpackages directly in ``package``."""
    names = []
    for child in sorted(package.iterdir()):
        if child.name.startswith('_'):
            continue
        if child.suffix == '.py':
            names.append(child.stem)
        elif (child / '__init__.py').exists():
            names.append(child.name)
    return names


def _mentioned(name, text):
    """Named as ``:mod:`.name```, ``pkg.name``, ````name```` or ``name/``."""
    return re.search(rf'[.`]{re.escape(name)}(?![\w])', text) is not None


@pytest.mark.parametrize(
    'package', list(_packages()),
    ids=lambda package: str(package.relative_to(TOP)))
def test_a_package_docstring_lists_what_the_package_holds(package):
    docstring = ast.get_docstring(
        ast.parse((package / '__init__.py').read_text())) or ''
    missing = [name for name in _contents(package)
               if not _mentioned(name, docstring)]
    assert missing == [], f'{package.name}/__init__.py does not name them'


def test_the_architecture_page_names_modules_that_exist():
    text = ARCHITECTURE.read_text()
    names = set(re.findall(r':mod:`~?(cloudkitty[\w.]*)`', text))
    assert len(names) >= 30
    missing = sorted(name for name in names
                     if importlib.util.find_spec(name) is None)
    assert missing == []


def test_the_architecture_page_covers_every_top_level_part():
    text = ARCHITECTURE.read_text()
    parts = [name for name in _contents(PACKAGE) if name != 'tests']
    missing = [name for name in parts
               if f'cloudkitty.{name}`' not in text]
    assert missing == []


GROUND = {'dataframe', 'timeutils', '_perf', 'signatures',
          'conf', 'service', 'db'}
SERVICES = {'orchestrator', 'api', 'writer', 'importer', 'cli', 'wsgi'}
WEB = ('pecan', 'wsme', 'cloudkitty.api')


def _imports():
    """``(module path, imported name)`` of every import of the package."""
    for path in sorted(PACKAGE.rglob('*.py')):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == 'tests':
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f'{node.module}.{alias.name}'
                                         for alias in node.names]
            else:
                continue
            for name in names:
                yield relative, name


def _part(name):
    """The top-level part of ``cloudkitty.x.y`` (``x``), else ``None``."""
    pieces = name.split('.')
    if pieces[0] != 'cloudkitty' or len(pieces) < 2:
        return None
    return pieces[1].removesuffix('.py')


def test_imports_go_one_way():
    wrong = []
    for relative, name in _imports():
        part = relative.parts[0].removesuffix('.py')
        other = _part(name)
        web_side = (part in ('api', 'cli', 'wsgi')
                    or relative.parts[0] == 'rating'
                    and relative.name == 'api.py')
        if name.startswith(WEB) and not web_side:
            wrong.append((str(relative), name, 'web framework'))
        if other is None or other == part:
            continue
        if part == 'api' and other == 'orchestrator':
            wrong.append((str(relative), name, 'API -> processor'))
        if part not in SERVICES and other in SERVICES and not (
                web_side and other == 'api'):
            wrong.append((str(relative), name, 'up to a service'))
        if part in ('collector', 'fetcher', 'rating') and other == 'storage':
            wrong.append((str(relative), name, 'plugin -> rated data'))
        if part in GROUND and other not in GROUND:
            wrong.append((str(relative), name, 'ground floor -> above'))
    assert wrong == [], '\n'.join(map(str, wrong))
