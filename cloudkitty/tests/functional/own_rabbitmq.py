"""A RabbitMQ node of the test's own, which the test may stop.

The machine's broker (``rabbit@localhost`` on 127.0.0.1:5672) serves other
tests at the same time and must never be stopped; a test that takes the
broker away starts this one instead: ``rabbitmq-server`` as a separate
Erlang node (``ck-<random>@localhost``) on free ports of 127.0.0.1, its
database, logs, cookie and configuration in a temporary directory, no
plugin (the management plugin would take port 15672), the default
``guest`` account. :meth:`Node.stop` stops it for real, as an operator
would (``rabbitmqctl stop``): on :meth:`Node.start` it comes back on the
same port, with the same data directory and nothing of what was not
durable (queues, exchanges, bindings).

The files of the machine's own node (``/etc/rabbitmq``) are not read: the
configuration and environment files are the node's own, so that the
machine's ``NODENAME`` and listener are not taken up.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import kombu

from cloudkitty.tests.functional import live_server

#: Where Debian's package keeps the real scripts (``/usr/sbin`` holds a
#: wrapper that switches to the ``rabbitmq`` account and its files).
DEBIAN_SCRIPTS = '/usr/lib/rabbitmq/bin'


def scripts():
    """The directory of ``rabbitmq-server`` and ``rabbitmqctl``, or
    ``None`` when RabbitMQ is not installed."""
    candidates = [DEBIAN_SCRIPTS]
    found = shutil.which('rabbitmq-server')
    if found:
        candidates.append(os.path.dirname(found))
    for directory in candidates:
        server = os.path.join(directory, 'rabbitmq-server')
        if (os.access(server, os.X_OK) and
                os.access(os.path.join(directory, 'rabbitmqctl'), os.X_OK)
                and os.path.basename(os.path.realpath(server))
                != 'rabbitmq-script-wrapper'):
            return directory
    return None


class Node:
    """A throw-away node: :meth:`start`, :meth:`stop`, :attr:`url`."""

    def __init__(self, scripts_dir):
        self._scripts = scripts_dir
        self.directory = tempfile.mkdtemp(prefix='ck-rabbitmq-')
        self.name = f'ck-{uuid.uuid4().hex[:12]}@localhost'
        self.port = live_server.free_port()
        self.dist_port = live_server.free_port()
        self._process = None
        self._output = os.path.join(self.directory, 'server.out')
        files = {
            'rabbitmq.conf': f'listeners.tcp.local = 127.0.0.1:{self.port}\n'
                             'log.console = false\n',
            'rabbitmq-env.conf': '',
            'enabled_plugins': '[].\n',
        }
        for name, text in files.items():
            with open(os.path.join(self.directory, name), 'w') as file:
                file.write(text)
        self._env = dict(
            os.environ,
            # The Erlang cookie is made there, for the node and rabbitmqctl.
            HOME=self.directory,
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS='127.0.0.1',
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=os.path.join(self.directory, 'mnesia'),
            RABBITMQ_LOG_BASE=os.path.join(self.directory, 'log'),
            RABBITMQ_PID_FILE=os.path.join(self.directory, 'rabbitmq.pid'),
            RABBITMQ_CONFIG_FILE=os.path.join(self.directory,
                                              'rabbitmq.conf'),
            RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(self.directory,
                                                       'advanced.config'),
            RABBITMQ_CONF_ENV_FILE=os.path.join(self.directory,
                                                'rabbitmq-env.conf'),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.directory,
                                                       'enabled_plugins'),
            # Distribution on the loopback only, like the machine's node;
            # an epmd started by this node listens there too.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                '-kernel inet_dist_use_interface {127,0,0,1}'),
            ERL_EPMD_ADDRESS='127.0.0.1',
        )

    @property
    def url(self):
        """The oslo.messaging transport URL of the node."""
        return f'rabbit://guest:guest@127.0.0.1:{self.port}/'

    @property
    def running(self):
        return self._process is not None and self._process.poll() is None

    def start(self, timeout=120):
        """Start the node and return once it accepts AMQP connections
        (``RuntimeError`` with the end of its output if it does not)."""
        assert not self.running, 'the node is running'
        with open(self._output, 'ab') as output:
            self._process = subprocess.Popen(
                [os.path.join(self._scripts, 'rabbitmq-server')],
                cwd=self.directory, env=self._env, stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.accepts():
            if self._process.poll() is not None:
                raise RuntimeError(
                    f'rabbitmq-server exited {self._process.returncode}: '
                    f'{self.output_tail()}')
            if time.monotonic() > deadline:
                self._kill()
                raise RuntimeError(
                    f'rabbitmq-server did not accept AMQP connections '
                    f'within {timeout}s: {self.output_tail()}')
            time.sleep(0.2)

    def accepts(self):
        """Whether an AMQP connection (handshake and login) succeeds now."""
        url = self.url.replace('rabbit://', 'amqp://', 1)
        connection = kombu.Connection(url, connect_timeout=2)
        try:
            connection.connect()
            return True
        except Exception:  # noqa: BLE001 - refused, reset, still booting
            return False
        finally:
            connection.release()

    def stop(self, timeout=60):
        """Stop the node with ``rabbitmqctl stop``, as an operator would
        (the broker closes its clients' connections); returns once the
        node is gone."""
        if not self.running:
            return
        subprocess.run(
            [os.path.join(self._scripts, 'rabbitmqctl'), '-n', self.name,
             'stop'], check=True, capture_output=True, cwd=self.directory,
            env=self._env, timeout=timeout)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()

    def destroy(self):
        """Stop the node if it runs, and remove its directory."""
        if self.running:
            try:
                self.stop(timeout=30)
            except (subprocess.SubprocessError, OSError):
                self._kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def output_tail(self, size=3000):
        """The end of the node's output and of its log."""
        log = os.path.join(self.directory, 'log', f'{self.name}.log')
        return (live_server.log_tail(self._output, size) + '\n' +
                live_server.log_tail(log, size))

    def _kill(self):
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._process.wait()
