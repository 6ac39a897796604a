"""Rating modules: the base class and the pipeline that orders them.

A rating module (stevedore namespace ``cloudkitty.rating.processors``) takes
a :class:`~cloudkitty.dataframe.DataFrame` and returns a priced one.
Whether a module is enabled, and its priority, is stored in the database
(:class:`cloudkitty.storage_state.ModuleStateManager`); the processor reads
those states once per period, so a change applies from the next period
rated. :class:`Pipeline` is the one way a frame goes through the enabled
modules, for the processor's periods and for quotes alike.

- :mod:`.common`: what the modules' dated rules share (validity windows,
  audit fields, soft deletes, the rules of a period start);
- :mod:`.noop`: the module that prices nothing;
- :mod:`.hash`: the hashmap module;
- :mod:`.pyscripts`: the module running administrators' scripts.
"""

import abc
import logging
import warnings

from stevedore import extension

from cloudkitty import signatures

LOG = logging.getLogger(__name__)

NAMESPACE = 'cloudkitty.rating.processors'
#: Said when ``for_scope`` is called.
FOR_SCOPE_DEPRECATED = ('for_scope(scope_id).process(frame) is deprecated: '
                        'use rate(frame, scope_id)')


class RatingProcessorBase(abc.ABC):
    """Base of every rating module.

    Class attributes: ``module_name`` (the entry point name),
    ``description``, ``hot_config`` (whether rules can change without a
    restart) and ``config_controller`` (the Pecan controller of the module's
    own API under ``/v1/rating/module_config/<module_name>``, or ``None``:
    a dotted path ``'package.module:Class'`` that only the API process
    imports, or the class itself) and ``processor_only`` (the module runs
    nothing in the API process: the API has a quote priced by a processor,
    or refuses it, while it is enabled).
    ``default_enabled``/``default_priority`` apply while the database holds
    no state for the module.

    The instance attributes ``enabled`` and ``priority`` reflect the state
    last loaded with :meth:`load_state`; :meth:`set_state` and
    :meth:`set_priority` change the stored state.
    """

    module_name = None
    description = ''
    hot_config = False
    processor_only = False
    config_controller = None
    default_enabled = False
    default_priority = 1

    def __init__(self, conf=None, module_state=None, tenant_id=None):
        """``module_state`` is a ModuleStateManager (``None``: defaults only).

        ``tenant_id`` is the scope being rated, for modules with
        scope-specific rules.
        """
        self.conf = conf
        self._module_state = module_state
        self._tenant_id = tenant_id
        self.enabled = self.default_enabled
        self.priority = self.default_priority

    def load_state(self, state):
        """Apply ``{"enabled", "priority"}`` read from the database (or None)."""
        state = state or {}
        self.enabled = state.get('enabled', self.default_enabled)
        self.priority = state.get('priority', self.default_priority)

    def set_state(self, enabled):
        """Store whether the module is enabled."""
        self._module_state.set_state(self.module_name, enabled)
        self.enabled = bool(enabled)

    def set_priority(self, priority):
        """Store the module's priority (higher runs first)."""
        self._module_state.set_priority(self.module_name, priority)
        self.priority = int(priority)

    def reload_config(self, start=None):
        """Reload the rules valid at ``start``; modules without rules do nothing."""

    @abc.abstractmethod
    def process(self, data):
        """Price ``data`` (a DataFrame) and return the priced DataFrame."""

    def rate(self, frame, scope_id):
        """Price ``frame``, a period of scope ``scope_id``, and return the
        priced DataFrame. By default :meth:`process`: modules with
        scope-specific rules override it."""
        return self.process(frame)

    def rate_many(self, items):
        """The frames of ``items`` (``[(frame, scope_id)]``, periods of
        one start, of one or several scopes) priced, as a list in order,
        holding in place of a frame the exception pricing it raised. By
        default :meth:`rate` of each; a module that prices faster in bulk
        overrides it, and may raise instead (then each frame is priced
        alone, with :meth:`rate`, so that only those it fails on fail)."""
        return _each_alone(self, items)

    def quote(self, data):
        """Price a quote request; by default the same as :meth:`process`."""
        return self.process(data)

    def for_scope(self, scope_id):
        """Deprecated: call :meth:`rate` with the scope. This module rating
        ``scope_id`` (itself, for a module without scope-specific rules)."""
        warnings.warn(FOR_SCOPE_DEPRECATED, DeprecationWarning, stacklevel=2)
        return self


def load_modules(conf=None, module_state=None, engine=None):
    """Instantiate every installed rating module: ``{name: module}``.

    Each is built with ``conf`` and ``module_state``, and with ``engine``
    (the process's one database engine) where its constructor has an
    ``engine`` parameter; a module that cannot be imported or built is
    logged and left out.
    """
    manager = extension.ExtensionManager(
        NAMESPACE, on_load_failure_callback=_log_load_failure)
    modules = {}
    for ext in manager:
        kwargs = {'conf': conf, 'module_state': module_state}
        if engine is not None and signatures.takes_keyword(
                ext.plugin, 'engine', var_keyword=False):
            kwargs['engine'] = engine
        try:
            module = ext.plugin(**kwargs)
        except Exception as exc:  # noqa: BLE001 - a broken plugin, logged
            _log_load_failure(manager, ext.entry_point, exc)
            continue
        module.module_name = ext.name
        modules[ext.name] = module
    return modules


def _log_load_failure(_manager, entrypoint, exc):
    LOG.error('Rating module %s could not be loaded: %s', entrypoint.name, exc)


def enabled_pipeline(modules, states):
    """Return the enabled modules in descending priority.

    ``states`` is :meth:`ModuleStateManager.get_all`'s result; each module's
    state is loaded from it first. Ties are broken by name for a stable order.
    """
    for name, module in modules.items():
        module.load_state(states.get(name))
    ordered = sorted((m for m in modules.values() if m.enabled),
                     key=lambda m: (-m.priority, m.module_name))
    return ordered


def _each_alone(module, items):
    """``module.rate`` of each ``(frame, scope_id)`` of ``items``, as a
    list holding the exception a frame raised in its place."""
    results = []
    for frame, scope_id in items:
        try:
            results.append(module.rate(frame, scope_id))
        except Exception as exc:  # noqa: BLE001 - this frame's failure
            results.append(exc)
    return results


def rate(frame, modules, scope_id=None):
    """Run ``frame`` through each module of ``modules`` in order
    (:meth:`RatingProcessorBase.rate`), each on the previous one's output;
    their rules are those they loaded last."""
    for module in modules:
        frame = module.rate(frame, scope_id)
    return frame


class Pipeline:
    """The enabled rating modules, in the order they price a frame.

    :param modules: ``{name: RatingProcessorBase}``
    :param states: their stored states (:meth:`~cloudkitty.storage_state.
        ModuleStateManager.get_all`), loaded into them
        (:func:`enabled_pipeline`)

    Each method first has every module load the rules valid at the frame's
    start (``reload_config``), then runs the frame through them in
    descending priority, each on the previous one's output. :meth:`rate`
    and :meth:`rate_many` load them once for the frames of one start in a
    row (the scopes of a processor's round, which share a pipeline): a
    change of the rules is seen from the next start, or the next pipeline.
    """

    def __init__(self, modules, states):
        self.modules = enabled_pipeline(modules, states)
        self._loaded = None   # the start rules were loaded for last

    @property
    def key(self):
        """What the pipeline prices with: its modules (their identities,
        whatever equality a module defines), in order. Two pipelines of
        one key price every frame alike."""
        return tuple(map(id, self.modules))

    def rate(self, frame, scope_id):
        """``frame``, a period of ``scope_id``, priced
        (:meth:`RatingProcessorBase.rate`)."""
        priced, = self.rate_many([(frame, scope_id)])
        if isinstance(priced, Exception):
            raise priced
        return priced

    def rate_many(self, items):
        """The frames of ``items`` (``[(frame, scope_id)]``, periods of any
        starts and scopes) priced, as a list in order: each module prices
        those of one start in one call (:meth:`RatingProcessorBase.
        rate_many`), the starts in the order they come.

        The list holds, in place of a frame a module failed on, the
        exception that stopped it; the later modules skip that frame
        (see :meth:`RatingProcessorBase.rate_many`). A failure to load
        the rules raises.
        """
        results = [frame for frame, _scope_id in items]
        by_start = {}
        for i, (frame, _scope_id) in enumerate(items):
            by_start.setdefault(frame.start, []).append(i)
        for start, indexes in by_start.items():
            if start != self._loaded:
                self._reload(start)
                self._loaded = start
            for module in self.modules:
                self._rate_with(module, items, indexes, results)
        return results

    @staticmethod
    def _rate_with(module, items, indexes, results):
        live = [i for i in indexes if not isinstance(results[i], Exception)]
        if not live:
            return
        todo = [(results[i], items[i][1]) for i in live]
        try:
            priced = module.rate_many(todo)
        except Exception as exc:  # noqa: BLE001 - told per frame below
            if len(todo) == 1:
                priced = [exc]
            else:
                LOG.debug('Rating module %s failed on %d frames at once, '
                          'pricing them one by one: %s', module.module_name,
                          len(todo), exc)
                priced = _each_alone(module, todo)
        for i, frame in zip(live, priced):
            results[i] = frame

    def quote(self, frame):
        """``frame``, a quote request, priced
        (:meth:`RatingProcessorBase.quote`)."""
        self._reload(frame.start)
        for module in self.modules:
            frame = module.quote(frame)
        return frame

    def _reload(self, start):
        for module in self.modules:
            module.reload_config(start)
