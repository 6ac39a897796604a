"""Sphinx configuration of the release notes (reno).

Built by ``tox -e releasenotes`` from the top of the repository, where
reno finds ``releasenotes/notes`` and the git history.
"""

project = 'CloudKitty Release Notes'
copyright = 'The CloudKitty developers'
extensions = ['reno.sphinxext']
master_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
