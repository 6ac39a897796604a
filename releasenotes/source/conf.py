"""Sphinx configuration of the release notes (reno)."""

project = 'CloudKitty Release Notes'
extensions = ['reno.sphinxext']
master_doc = 'index'
