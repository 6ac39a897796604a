"""The pyscripts rating module (entry point ``pyscripts``).

Administrators write Python scripts (stored by
:mod:`cloudkitty.rating.pyscripts.db` in the table of
:mod:`cloudkitty.rating.pyscripts.models`, managed through
``/v1/rating/module_config/pyscripts/scripts``, served by
:mod:`cloudkitty.rating.pyscripts.api`). Each script valid at a
period's start runs on the period's frame, in name order, each on the
previous one's output: the script sees a global ``data`` holding
``frame.as_dict(mutable=True)`` (``period.begin``/``end`` datetimes,
``vol.qty`` and ``rating.price`` Decimals), edits it in place (typically
``point['rating']['price']``), and what it leaves is validated back into a
:class:`~cloudkitty.dataframe.DataFrame`. For example::

    import decimal
    for points in data['usage'].values():
        for point in points:
            point['rating']['price'] = (point['vol']['qty']
                                        * decimal.Decimal('0.01'))

Scripts run in sandbox processes
(:mod:`cloudkitty.rating.pyscripts.sandbox`), one interpreter per script
revision, each confined by the kernel so that a script can compute a price
and nothing else (no file, socket, signal, process, configuration, database
or environment of the service: see ``doc/source/admin/pyscripts.rst``),
under the ``[pyscripts]`` limits: a script that raises, loops, sleeps,
allocates without bound, writes too much, ends its process or leaves
something that is not a frame raises
:class:`~cloudkitty.rating.pyscripts.exceptions.ScriptFailed` naming it,
which fails that scope's period only (the scope worker logs it and rates the
period again on a later pass). Where the boundary cannot be set up, every
script fails saying what is missing, unless ``[pyscripts] allow_unconfined``
is set. Whenever the scripts change, every idle sandbox is ended. Scripts
run in the processors only (:attr:`PyScripts.processor_only`): the API never
prices a quote itself while this module is enabled.
"""

import threading

from cloudkitty import db as ck_db
from cloudkitty import rating
from cloudkitty.rating import common
from cloudkitty.rating.pyscripts import db as scripts_db
from cloudkitty.rating.pyscripts import exceptions as exc
from cloudkitty.rating.pyscripts import sandbox
from cloudkitty import timeutils


class PyScripts(rating.RatingProcessorBase):
    """Rates frames with the administrators' Python scripts.

    ``scripts_db`` is the :class:`~cloudkitty.rating.pyscripts.db.
    PyScriptsDB` to read scripts from (default: one made on first use on
    ``engine``, the process's one engine handed in by the service that
    loads the module, or else on the shared engine of ``[database]
    connection`` of ``conf``, :func:`cloudkitty.db.get_engine`); ``pool`` the
    :class:`~cloudkitty.rating.pyscripts.sandbox.SandboxPool` to run them
    in (default: one with the ``[pyscripts]`` limits, started on first
    use).
    """

    description = ('PyScripts rating module: prices frames with Python '
                   'scripts run in sandbox processes.')
    hot_config = True
    processor_only = True
    config_controller = (
        'cloudkitty.rating.pyscripts.api:PyScriptsConfigController')
    default_enabled = False
    default_priority = 1

    def __init__(self, conf=None, module_state=None, tenant_id=None,
                 scripts_db=None, pool=None, engine=None):
        super().__init__(conf, module_state, tenant_id)
        self._db = scripts_db
        self._engine = engine
        self._pool = pool
        self._lock = threading.Lock()
        self._revision = None
        self._scripts = common.RulesByStart(
            self._read_revision,
            lambda start: self._scripts_db().load_scripts(start))

    def _scripts_db(self):
        if self._db is None:
            self._db = scripts_db.PyScriptsDB(
                self._engine or ck_db.get_engine(self.conf))
        return self._db

    def _read_revision(self):
        revision = self._scripts_db().revision()
        with self._lock:
            changed = self._revision is not None and \
                revision != self._revision
            self._revision = revision
            pool = self._pool
        if changed and pool is not None:
            # A script changed or went: no sandbox outlives what it ran.
            pool.flush()
        return revision

    def _sandboxes(self):
        with self._lock:
            if self._pool is None:
                if self.conf is not None:
                    self._pool = sandbox.SandboxPool(
                        sandbox.Limits.from_conf(self.conf),
                        self.conf.pyscripts.sandbox_processes,
                        python=self.conf.pyscripts.python or None,
                        boundary=sandbox.Boundary.from_conf(self.conf))
                else:
                    self._pool = sandbox.SandboxPool()
            return self._pool

    def scripts_at(self, start):
        """The :class:`~cloudkitty.rating.pyscripts.db.Script` list of a
        period starting at ``start``, in the order they run (cached while
        no script changes)."""
        return self._scripts.at(start)

    def reload_config(self, start=None):
        """Make the scripts valid at ``start`` (default: now) current."""
        self._scripts.reload(start or timeutils.utcnow())

    def run_script(self, script, frame):
        """``frame`` as ``script`` (a Script) leaves it; ScriptFailed."""
        request = sandbox.encode_request(script.name, script.data, frame)
        try:
            reply = self._sandboxes().call(
                request, key=(script.script_id, script.checksum),
                name=script.name)
        except sandbox.SandboxFailure as failure:
            raise exc.ScriptFailed(script.name, script.script_id,
                                   failure.reason) from None
        if not isinstance(reply, dict) or reply.get('ok') is not True:
            error = reply.get('error') if isinstance(reply, dict) else None
            raise exc.ScriptFailed(
                script.name, script.script_id,
                str(error) if error else 'the sandbox sent a malformed reply')
        try:
            return sandbox.decode_frame(reply.get('data'), frame)
        except ValueError as error:
            raise exc.ScriptFailed(script.name, script.script_id,
                                   f'it left malformed data: {error}') \
                from None

    def process(self, data):
        """Run the scripts valid at ``data.start`` on ``data`` in turn;
        :class:`~cloudkitty.rating.pyscripts.exceptions.ScriptFailed`
        names the first that fails."""
        for script in self._scripts.current(data.start):
            data = self.run_script(script, data)
        return data

    def close(self):
        """End the sandbox processes (they also end with this process)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
