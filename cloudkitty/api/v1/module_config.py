"""What the rating modules' own v1 APIs share (hashmap, pyscripts).

A module's API sits under ``/v1/rating/module_config/<module>`` (see
:class:`cloudkitty.api.v1.rating.ModuleConfigController`, which checks
access once for all of it). Those APIs speak v1: Decimals are JSON
strings, datetimes naive UTC ISO 8601 (naive input is UTC), errors
``{"faultcode", "faultstring", "debuginfo"}``. What they have in common:

- the WSME types :data:`DECIMAL` (which ``/v1/report`` writes its prices
  with too), :data:`LEVEL` and :data:`DATETIME`, and
  :class:`DatedRule`, the validity, description and audit attributes of a
  rule of :mod:`cloudkitty.rating.common`;
- :func:`read_body` and :func:`respond`, for routes whose body holds
  numbers: WSME reads JSON numbers as floats, these read them digit for
  digit (``0.1`` is ``Decimal('0.1')``);
- the query parameters (:func:`flag`, :func:`is_active`), the id a client
  may give in the path, the query string or the body
  (:func:`cloudkitty.api.utils.one_id`),
  who calls (:func:`caller`), the URL of an object (:func:`object_url`),
  and the data layers' error families as HTTP errors
  (:func:`translate_errors`).
"""

import contextlib
import datetime
import decimal
import json

import pecan
import wsme.exc
import wsme.rest.json as wsme_json
from wsme import types as wtypes

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty import dataframe
from cloudkitty import timeutils

_TRUE = ('true', '1', 'yes', 'on')
_FALSE = ('false', '0', 'no', 'off', '')


_WIDE = decimal.Context(prec=100)


class DecimalType(wtypes.UserType):
    """A Decimal: read from a JSON number or a string of one, exactly;
    written as a JSON string in positional notation (``0.0000001``, never
    ``1E-7``), digit for digit."""

    basetype = wtypes.text
    name = 'decimal'

    def validate(self, value):
        if isinstance(value, bool) or not isinstance(
                value, (str, int, float, decimal.Decimal)):
            raise TypeError('expected a number')
        return dataframe.to_decimal(value)

    def tobasetype(self, value):
        return None if value is None else format(value, 'f')


class LevelType(DecimalType):
    """A threshold's level: written with 8 decimals at least (``2`` is
    ``"2.00000000"``), as upstream's ``NUMERIC(20, 8)`` column writes it;
    a level with more decimals keeps them all."""

    name = 'level'
    _EIGHT_DECIMALS = decimal.Decimal('1E-8')

    def tobasetype(self, value):
        if value is not None and value.as_tuple().exponent > -8:
            value = value.quantize(self._EIGHT_DECIMALS, context=_WIDE)
        return super().tobasetype(value)


class DatetimeType(wtypes.UserType):
    """An instant: read from ISO 8601 (naive is UTC) as an aware datetime;
    written as naive UTC ISO 8601, as v1 does."""

    basetype = wtypes.text
    name = 'datetime'

    def validate(self, value):
        if not isinstance(value, (str, datetime.datetime)):
            raise TypeError('expected an ISO 8601 date')
        return utils.utc(value)

    def tobasetype(self, value):
        if value is None:
            return None
        return utils.utc(value).replace(tzinfo=None).isoformat()


DECIMAL = DecimalType()
LEVEL = LevelType()
DATETIME = DatetimeType()
#: The names and ids of rules and of what they hang on.
NAME = wtypes.StringType(max_length=255)


class DatedRule(wtypes.Base):
    """The attributes every dated rule has: validity, description, audit
    fields, soft delete (:mod:`cloudkitty.rating.common`)."""

    description = wtypes.wsattr(wtypes.text, mandatory=False)
    start = wtypes.wsattr(DATETIME, mandatory=False)
    end = wtypes.wsattr(DATETIME, mandatory=False)
    created_at = wtypes.wsattr(DATETIME, mandatory=False)
    created_by = wtypes.wsattr(wtypes.text, mandatory=False)
    updated_by = wtypes.wsattr(wtypes.text, mandatory=False)
    deleted = wtypes.wsattr(DATETIME, mandatory=False)
    deleted_by = wtypes.wsattr(wtypes.text, mandatory=False)


def given(obj):
    """``{attribute: value}`` of what a request body set on ``obj`` (a WSME
    object; ``None`` included, nothing for ``None`` itself)."""
    if obj is None:
        return {}
    values = {}
    for attribute in wtypes.list_attributes(type(obj)):
        value = getattr(obj, attribute.key)
        if value is not wtypes.Unset:
            values[attribute.name] = value
    return values


def refuse_read_only(values, allowed, what):
    """:class:`errors.BadRequest` naming what of ``values`` (a dict from
    :func:`given`) is not in ``allowed`` on a new ``what``."""
    unexpected = sorted(set(values) - set(allowed))
    if unexpected:
        raise errors.BadRequest(
            f"{', '.join(unexpected)} cannot be set on a new {what}.")


def require(values, *names):
    """:class:`errors.BadRequest` for the first of ``names`` that
    ``values`` lacks (or holds ``None``)."""
    for name in names:
        if values.get(name) is None:
            raise errors.BadRequest(f"'{name}' is required in the body.")


def read_body(datatype):
    """The request's JSON body as a ``datatype`` (a WSME complex type).

    Numbers are read digit for digit; an empty body is an empty object.
    Raises :class:`errors.BadRequest` for malformed JSON, a non-object, an
    unknown attribute or a value of the wrong type.
    """
    body = utils.json_body()
    try:
        return wsme_json.fromjson(datatype, body)
    except wsme.exc.UnknownAttribute as exc:
        raise errors.BadRequest(
            f"unknown attribute(s): {', '.join(sorted(exc.attributes))}") \
            from None
    except wsme.exc.InvalidInput as exc:
        raise errors.BadRequest(
            f"invalid '{exc.fieldname}' {exc.value!r}: {exc.msg}") from None
    except wsme.exc.ClientSideError as exc:
        raise errors.BadRequest(exc.faultstring) from None


def respond(datatype=None, value=None, status=200):
    """``pecan.response`` with ``value`` (of WSME type ``datatype``) as its
    JSON body, or no body without ``datatype``."""
    response = pecan.response
    response.status = status
    if datatype is None:
        response.content_type = None
        response.body = b''
    else:
        response.content_type = 'application/json'
        response.charset = 'utf-8'
        response.text = json.dumps(wsme_json.tojson(datatype, value))
    return response


def flag(value, name):
    """A boolean query parameter (text; ``None`` is false)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise errors.BadRequest(f"invalid query parameter '{name}': expected a "
                            f'boolean, got {value!r}')


def is_active(value):
    """The ``is_active`` list filter: ``True`` (valid now), ``None`` (no
    filter) or the instant to be valid at, as given."""
    if value is None:
        return None
    if value.lower() in _TRUE + _FALSE:
        return flag(value, 'is_active') or None
    return instant(value, 'is_active')


def instant(value, name):
    """A date filter of a list: ``None``, or ``value`` as an aware UTC
    datetime; :class:`errors.BadRequest` naming ``name`` if it is not a
    date :func:`cloudkitty.api.utils.utc` takes."""
    if value is None:
        return None
    try:
        moment = timeutils.parse(value)
    except ValueError:
        raise errors.BadRequest(f'{name} {value!r} is not a date') from None
    try:
        return utils.utc(moment)
    except ValueError as exc:
        raise errors.BadRequest(f'{name}: {exc}') from None


def caller():
    """The user calling, as the audit fields record it."""
    return pecan.request.context.user_id


def object_url(object_id):
    """The URL of object ``object_id`` of the collection the request is
    on, whether the path named it or not."""
    url = pecan.request.path_url.rstrip('/')
    if url.rsplit('/', 1)[-1] != object_id:
        url = f'{url}/{object_id}'
    return url


@contextlib.contextmanager
def translate_errors(not_found, conflict, invalid):
    """A module's data-layer error families as 404, 409 and 400."""
    try:
        yield
    except not_found as error:
        raise errors.NotFound(str(error)) from None
    except conflict as error:
        raise errors.Conflict(str(error)) from None
    except invalid as error:
        raise errors.BadRequest(str(error)) from None
