"""``csv``: one CSV file per scope and month.

``<scope>-<YYYY>-<MM>.csv`` has one row per rated point with the columns
of :data:`COLUMNS`, then one ``user:<key>`` column per metadata key met in
the month (sorted; a key first met in a later period widens the file, the
rows already written get an empty cell), then three footer rows,
``InvoiceTotal``, ``AccountTotal`` and ``StatementTotal``, whose ``Cost``
is the exact sum of the month's costs.

``Cost`` is the point's price and ``UsageQuantity`` its quantity, digit for
digit; ``RateValue`` is the unit price, ``Cost / UsageQuantity`` to 28
significant digits (empty for a zero quantity).
"""

import csv
import decimal
import io

from cloudkitty import writer

COLUMNS = ('UsageStart', 'UsageEnd', 'ResourceId', 'Operation', 'UserId',
           'ProjectId', 'ItemName', 'ItemFlavor', 'ItemFlavorId',
           'AvailabilityZone', 'Service', 'UsageQuantity', 'RateValue',
           'Cost')

# Column: the labels (groupby, then metadata) it is read from, first found.
_LABEL_COLUMNS = {
    'ResourceId': ('id', 'resource_id', 'instance_id'),
    'UserId': ('user_id',),
    'ProjectId': ('project_id',),
    'ItemName': ('name', 'display_name'),
    'ItemFlavor': ('flavor_name',),
    'ItemFlavorId': ('flavor_id',),
    'AvailabilityZone': ('availability_zone',),
}
# The AWS-style operation of the types that have one.
_OPERATIONS = {'instance': 'RunInstances'}
_DATE_FORMAT = '%Y/%m/%d %H:%M:%S'
_RATE_CONTEXT = decimal.Context(prec=28)
_ENCODING = 'utf-8'


def _text(value):
    if value is None:
        return ''
    if isinstance(value, decimal.Decimal):
        return format(value, 'f')
    return str(value)


def _rows_bytes(columns, rows):
    buffer = io.StringIO()
    csv.DictWriter(buffer, columns, restval='').writerows(rows)
    return buffer.getvalue().encode(_ENCODING)


class CSVWriter(writer.BaseWriter):
    """A detailed-billing style CSV report."""

    def filename(self, scope_id, month):
        return f'{scope_id}-{month:%Y-%m}.csv'

    @staticmethod
    def _columns(report):
        return list(COLUMNS) + report.extra.get('user_columns', [])

    def begin(self, report):
        report.extra['user_columns'] = []
        report.append(_rows_bytes(COLUMNS, [dict(zip(COLUMNS, COLUMNS))]))

    def write_period(self, report, frame):
        start = frame.start.strftime(_DATE_FORMAT)
        end = frame.end.strftime(_DATE_FORMAT)
        rows = [self._row(type_, point, start, end)
                for type_, point in frame.iterpoints()]
        known = set(self._columns(report))
        new = {key for row in rows for key in row if key not in known}
        if new:
            self._widen(report, sorted(new | set(
                report.extra['user_columns'])))
        report.append(_rows_bytes(self._columns(report), rows))

    @staticmethod
    def _row(type_, point, start, end):
        desc = point.desc
        row = {'UsageStart': start, 'UsageEnd': end, 'Service': type_,
               'Operation': _OPERATIONS.get(type_, ''),
               'UsageQuantity': _text(point.qty), 'Cost': _text(point.price)}
        for column, keys in _LABEL_COLUMNS.items():
            row[column] = next(
                (_text(desc[k]) for k in keys if k in desc), '')
        if point.qty:
            row['RateValue'] = _text(_RATE_CONTEXT.divide(
                point.price, point.qty).normalize(_RATE_CONTEXT))
        for key, value in point.metadata.items():
            row[f'user:{key}'] = _text(value)
        return row

    def _widen(self, report, user_columns):
        """Rewrite the body with ``user_columns`` (rows keep their cells)."""
        def transform(source, target):
            reader = csv.DictReader(io.TextIOWrapper(
                source, encoding=_ENCODING, newline=''))
            text = io.TextIOWrapper(target, encoding=_ENCODING, newline='')
            output = csv.DictWriter(text, list(COLUMNS) + user_columns,
                                    restval='')
            output.writeheader()
            output.writerows(reader)
            text.flush()
            text.detach()

        report.rewrite(transform)
        report.extra['user_columns'] = user_columns

    def footer(self, report, scope_id, month, until, total):
        cost = _text(total)
        period = (f'{month.strftime(_DATE_FORMAT)} - '
                  f'{until.strftime(_DATE_FORMAT)}')
        rows = [
            {'ProjectId': scope_id, 'Operation': 'InvoiceTotal',
             'ItemName': 'Total amount for invoice', 'Cost': cost},
            {'ProjectId': scope_id, 'Operation': 'AccountTotal',
             'ItemName': f'Total for linked account# {scope_id}',
             'Cost': cost},
            {'ProjectId': scope_id, 'Operation': 'StatementTotal',
             'ItemName': f'Total statement amount for period {period}',
             'Cost': cost},
        ]
        return _rows_bytes(self._columns(report), rows)
