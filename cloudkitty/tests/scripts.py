"""Import the repository's scripts (tools, benchmarks, samples), which are
not modules of a package, for tests to call their functions."""

import importlib.util
import pathlib

#: The top of the checkout.
TOP = pathlib.Path(__file__).resolve().parents[2]


def load(path, name=None):
    """The module of the script at ``path`` (a path, or a string relative
    to :data:`TOP`), run once; ``name`` defaults to its file name."""
    path = TOP / path
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
