"""Sphinx configuration of the CloudKitty documentation."""

project = 'CloudKitty'
copyright = 'The CloudKitty developers'
extensions = [
    'sphinx.ext.autodoc',
    'oslo_config.sphinxext',
]
master_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
