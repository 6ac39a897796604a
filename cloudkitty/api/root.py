"""``/``: the versions document and the two API versions."""

import pecan

from cloudkitty.api import v1
from cloudkitty.api import v2
from cloudkitty.api import versions


class RootController:

    v1 = v1.V1Controller()
    v2 = v2.V2Controller()

    @pecan.expose(generic=True)
    def index(self):
        pecan.abort(405)

    @index.when(method='GET', template='json')
    def index_get(self):
        return {'versions': [versions.describe(version_id)
                             for version_id, _status in versions.VERSIONS]}
