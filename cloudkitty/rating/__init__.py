"""Rating modules: the base class and the pipeline that orders them.

A rating module (stevedore namespace ``cloudkitty.rating.processors``) takes
a :class:`~cloudkitty.dataframe.DataFrame` and returns a priced one.
Whether a module is enabled, and its priority, is stored in the database
(:class:`cloudkitty.storage_state.ModuleStateManager`); the processor reads
those states once per pass, so a change applies from the next period rated.
"""

import abc
import logging

from stevedore import extension

LOG = logging.getLogger(__name__)

NAMESPACE = 'cloudkitty.rating.processors'


class RatingProcessorBase(abc.ABC):
    """Base of every rating module.

    Class attributes: ``module_name`` (the entry point name),
    ``description``, ``hot_config`` (whether rules can change without a
    restart) and ``config_controller`` (the Pecan controller of the module's
    own API under ``/v1/rating/module_config/<module_name>``, or ``None``)
    and ``processor_only`` (the module runs nothing in the API process: the
    API has a quote priced by a processor, or refuses it, while it is
    enabled).
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

    def quote(self, data):
        """Price a quote request; by default the same as :meth:`process`."""
        return self.process(data)

    def for_scope(self, scope_id):
        """This module rating ``scope_id``: an object with ``process`` and
        ``quote``. Modules with scope-specific rules return a view bound to
        the scope; the others, themselves."""
        return self


def load_modules(conf=None, module_state=None):
    """Instantiate every installed rating module: ``{name: module}``."""
    manager = extension.ExtensionManager(
        NAMESPACE, invoke_on_load=True,
        invoke_kwds={'conf': conf, 'module_state': module_state},
        on_load_failure_callback=_log_load_failure)
    modules = {}
    for ext in manager:
        ext.obj.module_name = ext.name
        modules[ext.name] = ext.obj
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


def rate(frame, pipeline, scope_id=None):
    """Run ``frame`` through each module of ``pipeline`` in order.

    With ``scope_id``, each module rates through :meth:`for_scope
    <RatingProcessorBase.for_scope>` so that scope-specific rules apply.
    """
    for module in pipeline:
        if scope_id is not None:
            module = module.for_scope(scope_id)
        frame = module.process(frame)
    return frame
