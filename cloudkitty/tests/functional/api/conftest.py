"""The API functional tests' helpers.

Their fixtures (``conf``, ``database``, ``backends``, ``app``,
``keystone_app``, ``rated``...) are those of every functional test, in
``cloudkitty/tests/functional/conftest.py``, where pytest finds them; the
helpers defined there are named here too, for the tests that call them.
"""

from cloudkitty.tests.functional.conftest import ADMIN
from cloudkitty.tests.functional.conftest import at
from cloudkitty.tests.functional.conftest import frame
from cloudkitty.tests.functional.conftest import make_conf
from cloudkitty.tests.functional.conftest import METRICS_YML
from cloudkitty.tests.functional.conftest import point
from cloudkitty.tests.functional.conftest import reader
from cloudkitty.tests.functional.conftest import ResetRecorder
from cloudkitty.tests.functional.conftest import UTC

__all__ = ['ADMIN', 'at', 'frame', 'make_conf', 'METRICS_YML', 'point',
           'reader', 'ResetRecorder', 'UTC']
