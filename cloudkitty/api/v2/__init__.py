"""API v2: one module per resource, voluptuous validation (see :mod:`.base`)."""

from cloudkitty.api.v2 import dataframes
from cloudkitty.api.v2 import rating
from cloudkitty.api.v2 import scope
from cloudkitty.api.v2 import summary
from cloudkitty.api.v2 import task
from cloudkitty.api import versions


class V2Controller(versions.VersionIndex):
    """``/v2``."""

    version_id = 'v2'

    dataframes = dataframes.DataFramesController()
    rating = rating.RatingController()
    scope = scope.ScopeController()
    summary = summary.SummaryController()
    task = task.TaskController()
