"""voluptuous validators shared by the layers that read numbers from
outside (metrics.yml, rules files, API bodies).

Contents: :func:`decimal_number`.
"""

import voluptuous

from cloudkitty import dataframe


def decimal_number(value):
    """voluptuous validator: a finite number -> ``Decimal``.

    Accepts what :func:`cloudkitty.dataframe.to_decimal` converts (int,
    str, Decimal, float through its ``str()``); a bool, a non-number, an
    infinity or a NaN is ``voluptuous.Invalid`` with a message naming the
    value ("expected a number" for a bool).
    """
    if isinstance(value, bool):
        raise voluptuous.Invalid('expected a number')
    try:
        return dataframe.to_decimal(value)
    except ValueError as exc:
        raise voluptuous.Invalid(str(exc)) from None
