"""``osrf``: one JSON file per scope and month.

``<scope>-osrf-<YYYY>-<MM>.json`` holds an array: the month's frames in
period order (the format of ``DataFrame.as_dict``, one per line), then
``{"total": N}``, the exact sum of their prices. Quantities, prices and
the total are JSON numbers written digit for digit.
"""

from cloudkitty import dataframe
from cloudkitty import writer


class OSRFWriter(writer.BaseWriter):
    """The OpenStack Report Format writer (JSON)."""

    def filename(self, scope_id, month):
        return f'{scope_id}-osrf-{month:%Y-%m}.json'

    def begin(self, report):
        report.append(b'[\n')

    def write_period(self, report, frame):
        report.append(frame.json().encode() + b',\n')

    def footer(self, report, scope_id, month, until, total):
        return dataframe.dumps({'total': total}).encode() + b'\n]\n'
