"""API v1: Pecan controllers with WSME types.

Decimals are JSON strings and errors ``{"faultcode", "faultstring",
"debuginfo"}``, as WSME writes them; datetimes are naive UTC.
"""

from cloudkitty.api.v1 import collector
from cloudkitty.api.v1 import info
from cloudkitty.api.v1 import rating
from cloudkitty.api.v1 import report
from cloudkitty.api.v1 import storage
from cloudkitty.api import versions


class V1Controller(versions.VersionIndex):
    """``/v1``."""

    version_id = 'v1'

    collector = collector.CollectorController()
    info = info.InfoController()
    rating = rating.RatingController()
    report = report.ReportController()
    storage = storage.StorageController()
