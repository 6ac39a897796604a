"""How a v2 handler is exposed: voluptuous input, JSON output, ``{"message"}``.

A handler decorated with :func:`expose` (an :class:`Endpoint`) is a plain
function: it receives its path arguments positionally and its validated
parameters as keyword-only arguments. List
parameters may be repeated or comma-separated; dict parameters are
``key:value`` items. Decimals are written as JSON numbers digit for digit,
datetimes as ISO 8601 with their offset. Handlers are served as
``application/json``: a request whose ``Accept`` header rules that type out
is answered 406.
"""

import pecan
import voluptuous
import webob

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty import dataframe
from cloudkitty import timeutils


class Endpoint:
    """A v2 handler with the policy rule and the parameter schemas it is
    served with (see :func:`expose`).

    :meth:`respond` is what Pecan calls, through the route table of
    :mod:`cloudkitty.api.v2`, with the path arguments of the request.
    """

    def __init__(self, handler, rule, query=None, body=None):
        self.handler = handler
        self.rule = rule
        self._query_schema = voluptuous.Schema(query or {})
        self._body_schema = voluptuous.Schema(body) if body is not None \
            else None

    @pecan.expose(content_type='application/json')
    def respond(self, *path_args):
        """Authorise, validate the parameters, call the handler with
        ``path_args`` and them; the answer as a JSON response, an
        :class:`~cloudkitty.api.errors.APIError` as ``{"message"}``."""
        try:
            utils.authorize(self.rule)
            if self._body_schema is None:
                params = utils.validate(self._query_schema, _query(),
                                        'query parameter')
            else:
                params = utils.validate(self._body_schema, _write_params(),
                                        'parameter')
            result = self.handler(*path_args, **params)
        except errors.APIError as exc:
            return _json_response({'message': exc.faultstring}, exc.code)
        if isinstance(result, tuple):
            return _json_response(*result)
        return _json_response(result)


def expose(rule, query=None, body=None):
    """Make a v2 handler an :class:`Endpoint`, to be named in the route
    table.

    :param rule: the policy rule checked, on the caller's project, before
        anything else (the handler may check more)
    :param query: voluptuous mapping for the query string; each value the
        handler sees went through its validator, which receives the list
        of raw strings given for that parameter
    :param body: voluptuous mapping for the parameters of a write: they may
        come from the JSON body (an object) or from the query string, not
        both
    The handler is a plain function: it receives the path arguments
    positionally and the validated parameters as keyword-only arguments,
    and returns a JSON-able value (answered with 200), or
    ``(value, status)``; a 204 has no body.
    """
    def decorate(handler):
        return Endpoint(handler, rule, query=query, body=body)
    return decorate


def _query():
    return pecan.request.GET.dict_of_lists()


def _write_params():
    params = utils.json_body()
    for name, values in _query().items():
        if name in params:
            raise errors.BadRequest(f"'{name}' is given both in the query "
                                    'string and in the body')
        params[name] = values
    return params


def _json_response(body, status=200):
    response = webob.Response(status=status, charset='utf-8')
    if status != 204:
        response.content_type = 'application/json'
        response.text = dataframe.dumps(body)
    else:
        response.content_type = None
    return response


# --- parameter validators -------------------------------------------------------

def _strings(value):
    """Repeated and/or comma-separated strings as one flat list."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or \
            not all(isinstance(item, str) for item in values):
        raise voluptuous.Invalid('expected a string or a list of strings')
    return [part.strip() for item in values for part in item.split(',')
            if part.strip()]


def multi(item=str):
    """A list parameter: each element validated by ``item``."""
    schema = voluptuous.Schema(item)

    def validate(value):
        return [schema(element) for element in _strings(value)]
    return validate


def single(item=str):
    """A parameter given once (a query value or a JSON scalar)."""
    schema = voluptuous.Schema(item)

    def validate(value):
        if isinstance(value, list):
            if len(value) != 1:
                raise voluptuous.Invalid(
                    f'expected one value, got {len(value)}')
            value = value[0]
        return schema(value)
    return validate


def key_values(value):
    """``key:value`` items as a dict; a key given several times maps to a
    list of its values."""
    result = {}
    for item in _strings(value):
        key, sep, val = item.partition(':')
        if not sep or not key.strip() or not val.strip():
            raise voluptuous.Invalid(f"'{item}' is not a key:value pair")
        result.setdefault(key.strip(), []).append(val.strip())
    return {key: values[0] if len(values) == 1 else values
            for key, values in result.items()}


def date(value):
    """An ISO 8601 date as an aware UTC datetime (naive means UTC)."""
    try:
        return utils.utc(value)
    except ValueError as exc:
        raise voluptuous.Invalid(str(exc)) from None


def boolean(value):
    """A JSON boolean, or true/false/yes/no/1/0 in the query string."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return voluptuous.Boolean()(value)
    raise voluptuous.Invalid('expected a boolean')


def non_empty(value):
    if not isinstance(value, str) or not value.strip():
        raise voluptuous.Invalid('expected a non-empty string')
    return value


def integer(minimum, maximum=utils.MAX_INT64):
    """An integer (a JSON integer or its decimal string) in
    [``minimum``, ``maximum``]."""
    def validate(value):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise voluptuous.Invalid('expected an integer')
        if isinstance(value, str) and len(value.strip()) > 40:
            raise voluptuous.Invalid(f'{value[:40]!r}... is too long for '
                                     f'an integer')
        try:
            number = int(value)
        except ValueError:
            raise voluptuous.Invalid(f'{value!r} is not an integer') from None
        if number < minimum:
            raise voluptuous.Invalid(f'must be at least {minimum}')
        if number > maximum:
            raise voluptuous.Invalid(f'must be at most {maximum}')
        return number
    return validate


def check_aligned(period, proposal, **moments):
    """Each of ``moments`` (``name=datetime``) is the start of a collect
    period of ``period`` seconds, else a 400 naming the misaligned ones and
    the aligned values that would do (``proposal`` says of what: "window
    covering this request", say)."""
    misaligned = [f'{name} ({moment.isoformat()})'
                  for name, moment in moments.items()
                  if timeutils.period_start(moment, period) != moment]
    if misaligned:
        aligned = ' '.join(
            f'{name}={timeutils.period_start(moment, period).isoformat()}'
            for name, moment in moments.items())
        raise errors.BadRequest(
            f"{' and '.join(misaligned)} not aligned to the collect period "
            f'of {period} seconds; the aligned {proposal} is {aligned}.')


#: ``offset`` (>= 0) and ``limit`` (>= 1) of a paginated list.
PAGINATION = {
    voluptuous.Optional('offset'): single(integer(0)),
    voluptuous.Optional('limit'): single(integer(1)),
}
