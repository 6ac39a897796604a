"""``/v2/task/reprocesses``: rate again periods already processed."""

import pecan
import voluptuous

from cloudkitty.api import errors
from cloudkitty.api.v2 import base
from cloudkitty.policies import task as task_policies
from cloudkitty.storage_state import reprocessing

ALL_SCOPES = 'ALL'


def _view(task):
    return {name: task[name] for name in (
        'reason', 'start_reprocess_time', 'end_reprocess_time',
        'current_reprocess_time')} | {'scope_id': task['identifier']}


def _order(value):
    # Any case: the cloudkitty CLI sends "DESC" unless told otherwise.
    if value.lower() not in reprocessing.ORDERS:
        raise voluptuous.Invalid(f"'{value}' is not an order; use "
                                 f"{' or '.join(reprocessing.ORDERS)}")
    return value.lower()


def _scopes(scope_ids):
    """The identifiers to reprocess, each with its scope states."""
    scope_state = pecan.request.backends.scope_state
    if scope_ids == [ALL_SCOPES]:
        states = scope_state.get_all(active=True)
        if not states:
            raise errors.BadRequest('There is no active scope to reprocess.')
    else:
        states = scope_state.get_all(scope_id=scope_ids)
        missing = sorted(set(scope_ids) - {s['identifier'] for s in states})
        if missing:
            raise errors.BadRequest(
                f"Unknown scope(s): {', '.join(missing)}.")
    by_scope = {}
    for state in states:
        by_scope.setdefault(state['identifier'], []).append(state)
    return by_scope


def _check_scope(scope_id, states, start, end):
    for state in states:
        last = state['last_processed_timestamp']
        if last is None:
            raise errors.BadRequest(
                f"Scope '{scope_id}' was never processed; there is nothing "
                'to reprocess.')
        if end > last:
            raise errors.BadRequest(
                f"end_reprocess_time ({end.isoformat()}) is after the last "
                f"processed timestamp of scope '{scope_id}' "
                f'({last.isoformat()}); only processed periods can be '
                'reprocessed.')
    overlapping = pecan.request.backends.reprocessing \
        .get_unfinished_overlapping(scope_id, start, end)
    if overlapping:
        task = overlapping[0]
        raise errors.BadRequest(
            f"Scope '{scope_id}' already has an unfinished reprocessing "
            f"task over [{task['start_reprocess_time'].isoformat()}, "
            f"{task['end_reprocess_time'].isoformat()}] that overlaps this "
            'window.')


@base.expose(task_policies.SCHEDULE_REPROCESSING, body={
    voluptuous.Required('scope_ids'): base.multi(),
    voluptuous.Required('start_reprocess_time'): base.single(base.date),
    voluptuous.Required('end_reprocess_time'): base.single(base.date),
    voluptuous.Required('reason'): base.single(str),
})
def schedule_reprocessing(*, scope_ids, start_reprocess_time,
                          end_reprocess_time, reason):
    """Schedule the reprocessing of scopes over [start, end]."""
    start, end = start_reprocess_time, end_reprocess_time
    if not scope_ids:
        raise errors.BadRequest("'scope_ids' is empty.")
    if ALL_SCOPES in scope_ids and len(scope_ids) > 1:
        raise errors.BadRequest(
            f"'{ALL_SCOPES}' stands for every active scope; it cannot "
            'be combined with scope ids.')
    if not reason.strip():
        raise errors.BadRequest(
            'The reason is blank; say why these periods are rated '
            'again.')
    if end < start:
        raise errors.BadRequest(
            f'end_reprocess_time ({end.isoformat()}) is before '
            f'start_reprocess_time ({start.isoformat()}).')
    base.check_aligned(
        pecan.request.backends.conf.collect.period,
        'window covering this request', start_reprocess_time=start,
        end_reprocess_time=end)
    scopes = _scopes(scope_ids)
    for scope_id, states in scopes.items():
        _check_scope(scope_id, states, start, end)
    pecan.request.backends.reprocessing.create(
        sorted(scopes), reason, start, end)
    return {}, 202


@base.expose(task_policies.GET_REPROCESSING, query={
    voluptuous.Optional('scope_ids'): base.multi(),
    voluptuous.Optional('order'): base.single(_order),
    **base.PAGINATION,
})
def list_reprocesses(*, scope_ids=None, order='desc', offset=0, limit=100):
    """List the tasks, of some scopes if ``scope_ids`` is given."""
    tasks = pecan.request.backends.reprocessing.get_all(
        scope_ids=scope_ids, order=order, offset=offset, limit=limit)
    return {'results': [_view(task) for task in tasks]}


@base.expose(task_policies.GET_REPROCESSING, query={
    voluptuous.Optional('order'): base.single(_order),
    **base.PAGINATION,
})
def list_scope_reprocesses(scope_id, *, order='desc', offset=0,
                           limit=100):
    """List the tasks of one scope; 404 if it has none."""
    tasks = pecan.request.backends.reprocessing.get_all(
        scope_ids=[scope_id], order=order, offset=offset, limit=limit)
    if not tasks and offset == 0:
        raise errors.NotFound(
            f"Scope '{scope_id}' has no reprocessing task.")
    return {'results': [_view(task) for task in tasks]}
