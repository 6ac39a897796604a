"""Sphinx configuration of the CloudKitty documentation.

Built by ``tox -e docs`` with warnings as errors. The configuration and
policy references, and their samples, are generated from the code through
the oslo.config and oslo.policy extensions; the release notes page is
reno's, read from ``releasenotes/notes``.
"""

project = 'CloudKitty'
copyright = 'The CloudKitty developers'
extensions = [
    'sphinx.ext.autodoc',
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
    'oslo_policy.sphinxext',
    'oslo_policy.sphinxpolicygen',
    'reno.sphinxext',
]
master_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
html_static_path = ['_static']

# oslo_config.sphinxconfiggen: _static/cloudkitty.conf.sample
config_generator_config_file = [
    ('../../etc/cloudkitty/cloudkitty-config-generator.conf',
     '_static/cloudkitty'),
]
# oslo_policy.sphinxpolicygen: _static/cloudkitty.policy.yaml.sample
policy_generator_config_file = (
    '../../etc/cloudkitty/cloudkitty-policy-generator.conf')
sample_policy_basename = '_static/cloudkitty'

# Base classes are documented in the order of their source, with the
# members a plugin author implements or calls.
autodoc_member_order = 'bysource'
autodoc_default_options = {'members': True, 'show-inheritance': True}
