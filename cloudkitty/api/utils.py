"""Helpers shared by the v1 and v2 controllers: access, scope, input, dates."""

import datetime
import decimal
import json

from oslo_policy import policy as oslo_policy
import pecan
import voluptuous
from wsme import types as wtypes

from cloudkitty.api import errors
from cloudkitty import timeutils


def authorize(rule, target=None):
    """Check ``rule`` for the caller on ``target``; :class:`errors.Forbidden` if denied.

    ``target`` defaults to ``{"project_id": <caller's project>}``.
    """
    context = pecan.request.context
    if target is None:
        target = {'project_id': context.project_id}
    try:
        pecan.request.backends.enforcer.authorize(
            rule, target, context, do_raise=True)
    except oslo_policy.PolicyNotAuthorized:
        raise errors.Forbidden(
            f'Access was denied to this resource (policy {rule}).') from None


def own_scope_filters(filters=None):
    """The ``filters`` a caller may use on rated data.

    Administrators keep theirs. For anyone else the scope filter is forced
    to their own project, whatever they asked; ``None`` is returned when
    they have no project (they see nothing).
    """
    context = pecan.request.context
    filters = dict(filters or {})
    if context.is_admin:
        return filters
    if not context.project_id:
        return None
    filters[pecan.request.backends.conf.collect.scope_key] = context.project_id
    return filters


#: How deep a request body may nest arrays and objects.
MAX_BODY_DEPTH = 32

#: The earliest and the latest instant the API takes (the databases hold
#: them all, and a month or a year after the latest is still a date).
EARLIEST = datetime.datetime(1900, 1, 1, tzinfo=datetime.timezone.utc)
LATEST = datetime.datetime(9000, 1, 1, tzinfo=datetime.timezone.utc)

#: The largest integer the API takes where a count or a position is asked
#: (offset, limit): what a signed 64-bit column or parameter holds.
MAX_INT64 = 2 ** 63 - 1

#: The largest priority of a rating module (an INTEGER column).
MAX_PRIORITY = 2 ** 31 - 1


def check_text(value, what):
    """``value`` (a str) unchanged; :class:`errors.BadRequest` naming
    ``what`` if it holds a lone surrogate, which is no text: no database
    stores one and no encoder writes it as UTF-8. (A NUL character is
    text, refused where it is stored: see
    :class:`cloudkitty.api.hooks.ErrorHook`.)"""
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        raise errors.BadRequest(
            f'{what} holds a lone surrogate, which is not text.') from None
    return value


def json_body():
    """The request's JSON body as a dict (``{}`` when empty or ``null``).

    Floats are read as Decimals, digit for digit. Raises
    :class:`errors.BadRequest` for malformed JSON, a non-object, nesting
    deeper than :data:`MAX_BODY_DEPTH` or text that :func:`check_text`
    refuses.
    """
    raw = pecan.request.body
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_float=decimal.Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.BadRequest(f'The body is not valid JSON: {exc}') \
            from None
    except RecursionError:
        raise errors.BadRequest(f'The body nests arrays or objects deeper '
                                f'than {MAX_BODY_DEPTH} levels.') from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        kind = {list: 'an array', str: 'a string', bool: 'a boolean'}.get(
            type(body), 'a number')
        raise errors.BadRequest(f'The body must be a JSON object, not {kind}.')
    _check_json(body)
    return body


def _check_json(body):
    """Walk ``body`` (without recursion) for :func:`json_body`."""
    pending = [(body, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_BODY_DEPTH:
            raise errors.BadRequest(f'The body nests arrays or objects '
                                    f'deeper than {MAX_BODY_DEPTH} levels.')
        if isinstance(value, dict):
            for key, item in value.items():
                check_text(key, 'A key of the body')
                pending.append((item, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            check_text(value, 'A string of the body')
        elif isinstance(value, decimal.Decimal) and not value.is_finite():
            raise errors.BadRequest('The body holds a number that is not '
                                    'finite.')


def validate(schema, params, what):
    """``schema(params)``; a :class:`errors.BadRequest` naming each fault.

    ``what`` names the kind of input in messages ("query parameter"...).
    """
    try:
        return schema(params)
    except voluptuous.MultipleInvalid as exc:
        raise errors.BadRequest('; '.join(
            _describe_invalid(error, what) for error in exc.errors)) from None
    except voluptuous.Invalid as exc:
        raise errors.BadRequest(_describe_invalid(exc, what)) from None


def _describe_invalid(error, what):
    if not error.path:
        return error.msg
    name = str(error.path[0]) + ''.join(
        f'[{part}]' if isinstance(part, int) else f'.{part}'
        for part in error.path[1:])
    if error.msg == 'extra keys not allowed':
        return f"unknown {what} '{name}'"
    if error.msg == 'required key not provided':
        return f"{what} '{name}' is required"
    return f"invalid {what} '{name}': {error.msg}"


def rating_module(module_id):
    """The rating module ``module_id``, state loaded; NotFound if unknown."""
    module = pecan.request.backends.rating_modules.get(module_id)
    if module is None:
        raise errors.NotFound(f"Rating module '{module_id}' does not exist.")
    return module


def utc(value):
    """Aware UTC datetime from a datetime or ISO 8601 string (naive is UTC).

    Raises ``ValueError`` for anything else, an offset of a day or more,
    or an instant outside [:data:`EARLIEST`, :data:`LATEST`).
    """
    moment = timeutils.parse(value)
    value = value if isinstance(value, str) else moment.isoformat()
    try:
        offset = moment.utcoffset()
        if offset is not None and abs(offset) >= datetime.timedelta(days=1):
            raise ValueError(f'{value!r}: a UTC offset is less than a day')
        moment = moment.astimezone(datetime.timezone.utc)
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST <= moment < LATEST:
        raise ValueError(f'{value!r} is out of range: dates go from '
                         f'{EARLIEST.date()} to {LATEST.date()} (excluded)')
    return moment


def month_window(begin=None, end=None):
    """``(begin, end)`` as aware UTC; missing ones are the current month's.

    Raises :class:`errors.BadRequest` when both are given and ``end`` is
    before ``begin``. When only one is given and the other, the current
    month's, would come before it (an ``end`` before this month, a
    ``begin`` after it), the window is empty, as upstream has it: nothing
    was asked wrong, there is just nothing in it. An empty window is
    ``(t, t)``, ``t`` the bound given.
    """
    month_start, next_month = timeutils.month_window()
    begin, end = _bound('begin', begin), _bound('end', end)
    if begin is not None and end is not None:
        if end < begin:
            raise errors.BadRequest(f'end ({end.isoformat()}) is before '
                                    f'begin ({begin.isoformat()})')
        return begin, end
    if end is not None:
        return min(month_start, end), end
    if begin is not None:
        return begin, max(begin, next_month)
    return month_start, next_month


def _bound(name, value):
    if value is None:
        return None
    try:
        return utc(value)
    except ValueError as exc:
        raise errors.BadRequest(f'invalid {name}: {exc}') from None


def one_id(name, *candidates):
    """The one id given in the path, the query string or the body.

    Clients differ (the ``cloudkitty`` CLI puts it in the body of PUT and
    DELETE requests): every one given must agree.
    """
    values = {value for value in candidates
              if value not in (None, wtypes.Unset, '')}
    if not values:
        raise errors.BadRequest(f"'{name}' is required (in the path, the "
                                'query string or the body).')
    if len(values) > 1:
        raise errors.BadRequest(f"'{name}' is given several times with "
                                'different values.')
    return values.pop()
