"""What :mod:`cloudkitty.api.wsme_adapter` relies on in WSME: a v1
handler's server-side error leaves WSME, a caller's error is answered by
it."""

import pecan
from pecan import rest
import pytest
import webtest
import wsmeext.pecan as wsme_pecan

from cloudkitty.api import errors
from cloudkitty.api import wsme_adapter


class _Failure(rest.RestController):

    def __init__(self, error):
        self._error = error

    @wsme_pecan.wsexpose(str, str)
    def get_one(self, item):
        raise self._error


class _Root:

    def __init__(self, error):
        self.items = _Failure(error)


def _app(error):
    wsme_adapter.pass_server_errors()
    wsme_adapter.pass_server_errors()  # idempotent
    return webtest.TestApp(pecan.make_app(_Root(error)))


@pytest.mark.parametrize('error', [RuntimeError('SELECT secret'),
                                   errors.ServiceUnavailable('no database')])
def test_a_server_side_error_reaches_the_hooks(error):
    with pytest.raises(type(error)) as raised:
        _app(error).get('/items/1')
    assert raised.value is error


def test_a_callers_error_is_answered_by_wsme():
    response = _app(errors.NotFound("Item '1' does not exist.")).get(
        '/items/1', status=404)
    assert response.json == {'faultcode': 'Client',
                             'faultstring': "Item '1' does not exist.",
                             'debuginfo': None}
