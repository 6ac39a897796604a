"""The API versions and the documents describing them."""

import pecan

#: (id, status) of each version, in the order they are listed.
VERSIONS = (('v1', 'CURRENT'), ('v2', 'EXPERIMENTAL'))


def describe(version_id):
    """``{"id", "status", "links"}`` of one version, linked from this request."""
    status = dict(VERSIONS)[version_id]
    return {'id': version_id, 'status': status,
            'links': [{'href': f'{pecan.request.application_url}/'
                               f'{version_id}/',
                       'rel': 'self'}]}


class VersionIndex:
    """Mixin serving ``GET /<version>`` without a token."""

    version_id = None

    @pecan.expose(generic=True)
    def index(self):
        pecan.abort(405)

    @index.when(method='GET', template='json')
    def index_get(self):
        return {'version': describe(self.version_id)}
