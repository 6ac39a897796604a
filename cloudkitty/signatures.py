"""What a plugin's callable accepts, read from its signature.

Plugins written for upstream CloudKitty take fewer arguments than ours (no
``conf``, no ``engine``): the loaders hand an argument only to a callable
that names it, and build the others the old way.
"""

import inspect


def takes_keyword(func, name, *, var_keyword=True, unknown=False):
    """Whether ``func(...)`` accepts the keyword argument ``name``.

    :param var_keyword: whether a ``**kwargs`` parameter counts as
        accepting it (not for a plugin that hands ``**kwargs`` on to a base
        class that does not take it).
    :param unknown: the answer when the signature cannot be read (a
        builtin, say).
    """
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return unknown
    return any(p.name == name and p.kind != p.POSITIONAL_ONLY
               or var_keyword and p.kind == p.VAR_KEYWORD
               for p in parameters)
