"""The machine's RabbitMQ and redis, which other users and other tests use
at the same time: each test gets a part of its own, removed after it.

RabbitMQ (127.0.0.1:5672): a virtual host of the test's own
(:func:`rabbitmq_vhost`), made with ``rabbitmqctl add_vhost`` and opened to
``guest``, deleted after the test with all it holds (queues, exchanges,
bindings; its connections are closed). Queue and exchange names only mean
something within a virtual host: the ``cloudkitty`` queue of a test is
neither another test's nor the one another user declared with other
settings on ``/``.

redis (127.0.0.1:6379): a key namespace of the test's own
(:func:`redis_namespace`), given to tooz in the coordination URL (its
redis driver begins every key it writes with the ``namespace`` option);
the keys under it are deleted after the test.

A server that is not there, or a ``rabbitmqctl`` that cannot manage it
(not installed, or not allowed: it needs root or the ``rabbitmq``
account), skips the test, except under ``CI=true`` where it fails.

Test modules take the fixtures by name: ``rabbitmq_vhost =
shared_servers.rabbitmq_vhost``.
"""

import contextlib
import shutil
import socket
import subprocess
import uuid

import kombu
import pytest
import redis

from cloudkitty.tests.functional import coordination

RABBITMQ_PORT = 5672
REDIS_PORT = 6379
#: The names of the virtual hosts and namespaces of the tests (a run
#: killed before its teardown leaves ones named so).
PREFIX = 'ck-test-'
#: Where ``rabbitmqctl`` is when the PATH lacks the sbin directories.
SBIN = '/usr/sbin:/usr/local/sbin:/sbin'


def listening(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
    except OSError:
        return False
    return True


def rabbitmqctl():
    """The ``rabbitmqctl`` that manages the machine's node (Debian's
    wrapper switches to the ``rabbitmq`` account and its Erlang cookie),
    or ``None``."""
    return shutil.which('rabbitmqctl') or shutil.which('rabbitmqctl',
                                                       path=SBIN)


class VirtualHost:
    """A virtual host named ``ck-test-<random>`` on the machine's node."""

    def __init__(self, ctl):
        self._ctl = ctl
        self.name = f'{PREFIX}{uuid.uuid4().hex[:12]}'

    def transport_url(self, port=RABBITMQ_PORT):
        """The oslo.messaging URL of the virtual host (through ``port``, a
        proxy's, if given)."""
        return f'rabbit://guest:guest@127.0.0.1:{port}/{self.name}'

    @property
    def url(self):
        return self.transport_url()

    @property
    def amqp_url(self):
        """The kombu URL of the virtual host."""
        return self.url.replace('rabbit://', 'amqp://', 1)

    def create(self):
        """Add the virtual host, give ``guest`` every right on it, and log
        in to it over AMQP (which proves that ``rabbitmqctl`` manages the
        node listening on :data:`RABBITMQ_PORT`). ``RuntimeError`` if
        that fails (the virtual host is then deleted again)."""
        self._ctl_run('add_vhost', self.name)
        try:
            self._ctl_run('set_permissions', '-p', self.name, 'guest',
                          '.*', '.*', '.*')
            connection = kombu.Connection(self.amqp_url, connect_timeout=10)
            try:
                connection.connect()
            except Exception as exc:  # noqa: BLE001 - refused, not allowed
                raise RuntimeError(f'guest cannot log in to {self.name} on '
                                   f'127.0.0.1:{RABBITMQ_PORT}: {exc}')
            finally:
                connection.release()
        except BaseException:
            with contextlib.suppress(RuntimeError):
                self.delete()
            raise

    def delete(self):
        """Delete the virtual host and all it holds; ``RuntimeError`` if
        ``rabbitmqctl`` fails."""
        self._ctl_run('delete_vhost', self.name)

    def _ctl_run(self, *args):
        try:
            result = subprocess.run(
                [self._ctl, *args], capture_output=True, text=True,
                stdin=subprocess.DEVNULL, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f'rabbitmqctl {args[0]}: {exc}') from exc
        if result.returncode != 0:
            raise RuntimeError(
                f'rabbitmqctl {" ".join(args)} exited {result.returncode}: '
                f'{(result.stderr or result.stdout).strip()[-1000:]}')


@pytest.fixture
def rabbitmq_vhost():
    """A :class:`VirtualHost` of the test's own on the machine's RabbitMQ
    (``.url`` is its transport URL), deleted after the test."""
    if not listening(RABBITMQ_PORT):
        coordination.missing(
            f'RabbitMQ is not reachable on 127.0.0.1:{RABBITMQ_PORT}')
    ctl = rabbitmqctl()
    if ctl is None:
        coordination.missing('rabbitmqctl is not installed (Debian package '
                             '"rabbitmq-server")')
    vhost = VirtualHost(ctl)
    try:
        vhost.create()
    except RuntimeError as exc:
        coordination.missing(f'cannot make a RabbitMQ virtual host of the '
                             f'test\'s own: {exc}')
    yield vhost
    vhost.delete()


class Namespace:
    """A redis key namespace named ``ck-test-<random>``."""

    def __init__(self):
        self.name = f'{PREFIX}{uuid.uuid4().hex[:12]}'
        #: The tooz coordination URL of the namespace.
        self.url = f'redis://127.0.0.1:{REDIS_PORT}?namespace={self.name}'

    def _client(self):
        return redis.Redis(host='127.0.0.1', port=REDIS_PORT,
                           socket_timeout=10)

    def keys(self):
        """The keys under the namespace (tooz puts ``_`` or ``:`` after
        it; the random part has a fixed length, so that no other
        namespace begins with this one)."""
        with self._client() as client:
            return sorted(client.scan_iter(match=f'{self.name}*',
                                           count=1000))

    def clear(self):
        """Delete the keys under the namespace."""
        keys = self.keys()
        if keys:
            with self._client() as client:
                client.delete(*keys)


@pytest.fixture
def redis_namespace():
    """A :class:`Namespace` of the test's own on the machine's redis
    (``.url`` is its coordination URL); its keys are deleted after the
    test."""
    if not listening(REDIS_PORT):
        coordination.missing(f'redis is not reachable on '
                             f'127.0.0.1:{REDIS_PORT}')
    namespace = Namespace()
    yield namespace
    namespace.clear()
    assert namespace.keys() == []
