"""The documentation and the release notes build without a warning.

Both are built as ``tox -e docs`` and ``tox -e releasenotes`` build them
(``sphinx-build -W --keep-going``), into a temporary directory. The
configuration and policy references are generated from the code and the
developer pages run autodoc on the base classes: an option's help or a
docstring that is not valid reStructuredText fails here.
"""

import subprocess
import sys

import yaml

from cloudkitty.tests.scripts import TOP


def _build(source, tmp_path):
    output = tmp_path / 'html'
    process = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q',
         '-b', 'html', '-d', str(tmp_path / 'doctrees'), source,
         str(output)],
        cwd=TOP, capture_output=True, text=True, timeout=300)
    warnings = [line for line in process.stderr.splitlines()
                if 'WARNING' in line or 'ERROR' in line]
    assert (process.returncode, warnings) == (0, []), process.stderr
    return output


def test_documentation_builds_without_warnings(tmp_path):
    output = _build('doc/source', tmp_path)
    configuration = (output / 'reference/configuration.html').read_text()
    # Options of several groups, from the oslo.config.opts entry point.
    for option in ('collect.scope_key', 'collector_file.usage_path',
                   'orchestrator.coordination_url', 'output.pipeline'):
        assert f'id="{option}"' in configuration, option
    policy = (output / 'reference/policy.html').read_text()
    assert 'context_is_admin' in policy
    sample = (output / '_static/cloudkitty.conf.sample').read_text()
    assert '#usage_path = /var/lib/cloudkitty/usage' in sample
    # autodoc found the base classes and their contracts.
    for page, name in (
            ('collector', 'cloudkitty.collector.BaseCollector.fetch_all'),
            ('fetcher', 'cloudkitty.fetcher.BaseFetcher.get_tenants'),
            ('rating', 'cloudkitty.rating.RatingProcessorBase.process'),
            ('storage', 'cloudkitty.storage.v2.BaseStorage._total')):
        text = (output / f'developer/{page}.html').read_text()
        assert f'id="{name}"' in text, name


def _committed_items():
    """The number of list items of the notes committed to git (reno reads
    the history, not the working tree)."""
    paths = subprocess.run(
        ['git', 'ls-files', 'releasenotes/notes'], cwd=TOP, check=True,
        capture_output=True, text=True).stdout.split()
    items = 0
    for path in paths:
        note = yaml.safe_load((TOP / path).read_text())
        items += sum(len(value) for value in note.values()
                     if isinstance(value, list))
    return len(paths), items


def test_release_notes_build_without_warnings(tmp_path):
    output = _build('releasenotes/source', tmp_path)
    notes, items = _committed_items()
    assert notes >= 17
    page = (output / 'unreleased.html').read_text()
    # Every item of every note is one list item of the notes' section.
    section = page[page.index('id="relnotes-'):
                   page.index('class="sphinxsidebar"')]
    assert section.count('<li') == items
