"""``/v2/scope``: where the processing of each scope stands.

A reset (PUT) is carried out by the processors, which own the scopes'
locks: this module hands the request to ``pecan.request.backends.scope_reset``
(``scope_reset(scopes, last_processed_timestamp)``, see
:mod:`cloudkitty.api.hooks`).
"""

import pecan
import sqlalchemy.exc
import voluptuous

from cloudkitty.api import errors
from cloudkitty.api.v2 import base
from cloudkitty.policies import scope as scope_policies
from cloudkitty.storage_state import scope_admin

_KEYS = ('scope_key', 'fetcher', 'collector')


def _view(state):
    timestamp = state['last_processed_timestamp']
    return {
        'scope_id': state['identifier'],
        'scope_key': state['scope_key'],
        'fetcher': state['fetcher'],
        'collector': state['collector'],
        'last_processed_timestamp': timestamp,
        # The name the CLI still reads.
        'state': timestamp,
        'active': state['active'],
        'scope_activation_toggle_date': state['scope_activation_toggle_date'],
    }


def _scope_state():
    return pecan.request.backends.scope_state


def _check_aligned(timestamp):
    # A state between two period starts would have the processor rate
    # periods that straddle the stored ones.
    base.check_aligned(pecan.request.backends.conf.collect.period,
                       'timestamp', last_processed_timestamp=timestamp)


@base.expose(scope_policies.GET_STATE, query={
    voluptuous.Optional('scope_id'): base.multi(),
    **{voluptuous.Optional(key): base.multi() for key in _KEYS},
    voluptuous.Optional('active'): base.single(base.boolean),
    **base.PAGINATION,
})
def list_scopes(*, scope_id=None, scope_key=None, fetcher=None,
                collector=None, active=None, offset=0, limit=100):
    """List scopes; 404 when none matches."""
    states = _scope_state().get_all(
        scope_id=scope_id, scope_key=scope_key, fetcher=fetcher,
        collector=collector, active=active, offset=offset, limit=limit)
    if not states:
        raise errors.NotFound('No scope found for these filters.')
    return {'results': [_view(state) for state in states]}


@base.expose(scope_policies.RESET_STATE, body={
    voluptuous.Optional('all_scopes'): base.single(base.boolean),
    voluptuous.Optional('scope_id'): base.multi(),
    **{voluptuous.Optional(key): base.multi() for key in _KEYS},
    voluptuous.Optional('last_processed_timestamp'): base.single(base.date),
    voluptuous.Optional('state'): base.single(base.date),
})
def reset_scopes(*, all_scopes=False, scope_id=None, scope_key=None,
                 fetcher=None, collector=None, last_processed_timestamp=None,
                 state=None):
    """Reset scopes to ``last_processed_timestamp`` (``state``: alias)."""
    if all_scopes and scope_id:
        raise errors.BadRequest('Give either all_scopes or scope_id, '
                                'not both.')
    if not all_scopes and not scope_id:
        raise errors.BadRequest('Give all_scopes=true or the scope_id of '
                                'the scopes to reset.')
    if last_processed_timestamp is None:
        last_processed_timestamp = state
    elif state is not None and state != last_processed_timestamp:
        raise errors.BadRequest('state is an alias of '
                                'last_processed_timestamp; they differ.')
    if last_processed_timestamp is None:
        raise errors.BadRequest("'last_processed_timestamp' is required.")
    _check_aligned(last_processed_timestamp)
    states = _scope_state().get_all(
        scope_id=scope_id or None, scope_key=scope_key,
        fetcher=fetcher, collector=collector)
    if not states:
        raise errors.NotFound('No scope found for these filters.')
    pecan.request.backends.scope_reset(
        [{'scope_id': s['identifier'], 'scope_key': s['scope_key'],
          'fetcher': s['fetcher'], 'collector': s['collector']}
         for s in states],
        last_processed_timestamp)
    return {}, 202


@base.expose(scope_policies.PATCH_STATE, body={
    voluptuous.Required('scope_id'): base.single(base.non_empty),
    **{voluptuous.Optional(key): base.single(base.non_empty)
       for key in _KEYS},
    voluptuous.Optional('active'): base.single(base.boolean),
})
def update_scope(*, scope_id, scope_key=None, fetcher=None,
                 collector=None, active=None):
    """Change a scope's keys or whether it is active."""
    states = _scope_state().get_all(scope_id=scope_id)
    if not states:
        raise errors.NotFound(f"Scope '{scope_id}' does not exist.")
    if len(states) > 1:
        raise errors.BadRequest(
            f"{len(states)} scopes have the id '{scope_id}' (with other "
            'scope_key, fetcher or collector); a change would be '
            'ambiguous.')
    try:
        updated = _scope_state().update_scope(
            states[0], scope_key=scope_key, fetcher=fetcher,
            collector=collector, active=active)
    except scope_admin.ScopeConflict as exc:
        raise errors.Conflict(str(exc)) from None
    if updated is None:
        raise errors.NotFound(f"Scope '{scope_id}' does not exist.")
    return _view(updated)


@base.expose(scope_policies.POST_STATE, body={
    voluptuous.Required('scope_id'): base.single(base.non_empty),
    voluptuous.Required('last_processed_timestamp'): base.single(base.date),
    **{voluptuous.Optional(key): base.single(base.non_empty)
       for key in _KEYS},
    voluptuous.Optional('active'): base.single(base.boolean),
})
def create_scope(*, scope_id, last_processed_timestamp, scope_key=None,
                 fetcher=None, collector=None, active=True):
    """Declare a scope."""
    _check_aligned(last_processed_timestamp)
    if _scope_state().get_all(scope_id=scope_id, active=True):
        raise errors.NotFound(
            f"An active scope '{scope_id}' already exists; it cannot be "
            'created again.')
    parts = {'scope_key': scope_key, 'fetcher': fetcher,
             'collector': collector}
    try:
        created = _scope_state().create_scope(
            scope_id, last_processed_timestamp, active=active, **parts)
    except sqlalchemy.exc.IntegrityError:
        raise errors.Conflict(
            f"Scope '{scope_id}' already exists (inactive) with these "
            'scope_key, fetcher and collector.') from None
    return _view(created)
