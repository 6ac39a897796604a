"""The ``keystone`` fetcher: the scopes are Keystone projects.

A project is rated when the user of ``[fetcher_keystone]`` (keystoneauth
options, or those of the group named by ``auth_section``) holds the
``rating`` role on it, directly, through a group or by inheritance; with
``ignore_rating_role``, every project is. ``ignore_disabled_tenants``
leaves disabled projects out. Listing every project needs a user allowed
to (the ``admin`` role, as upstream deployments give the service user).

Two identity calls per listing, whatever the number of projects: the
projects, and the user's effective ``rating`` role assignments.
"""

from keystoneauth1 import exceptions as ks_exceptions

from cloudkitty import fetcher
from cloudkitty import keystone_auth

GROUP = 'fetcher_keystone'
RATING_ROLE = 'rating'


class KeystoneFetcher(fetcher.BaseFetcher):
    """List the projects of the Keystone of ``[fetcher_keystone]``.

    :raises FetchError: no keystoneauth ``auth_type`` is configured
    """

    name = 'keystone'

    def __init__(self, conf=None):
        super().__init__(conf)
        self._options = self.conf[GROUP]
        auth = keystone_auth.load_auth(self.conf, GROUP)
        if auth is None:
            raise fetcher.FetchError(
                f'keystone fetcher: [{GROUP}] auth_type (or an auth_section '
                f'holding it) is required')
        self._session = keystone_auth.load_session(self.conf, GROUP, auth)
        self.source = f'Keystone at {getattr(auth, "auth_url", "?")}'

    def _get(self, path, **params):
        response = self._session.get(path, params=params, endpoint_filter={
            'service_type': 'identity', 'interface': self._options.interface,
            'region_name': self._options.region_name, 'version': (3, 0)})
        return response.json()

    def get_tenants(self):
        """The ids of the projects to rate, sorted.

        :raises FetchError: Keystone failed or refused, naming it and the
            call
        """
        what = 'listing the projects'
        try:
            projects = self._get('/projects')['projects']
            if self._options.ignore_disabled_tenants:
                projects = [p for p in projects if p.get('enabled', True)]
            ids = {project['id'] for project in projects}
            if not self._options.ignore_rating_role:
                what = f'listing the projects of the {RATING_ROLE} role'
                ids &= self._rated_projects()
        except (ks_exceptions.ClientException, ValueError, KeyError) as exc:
            raise fetcher.FetchError(
                f'keystone fetcher: {self.source}: {what}: '
                f'{type(exc).__name__}: {exc}') from None
        return sorted(ids)

    def _rated_projects(self):
        roles = self._get('/roles', name=RATING_ROLE)['roles']
        if not roles:
            return set()
        assignments = self._get(
            '/role_assignments', **{
                'user.id': self._session.get_user_id(),
                'role.id': roles[0]['id'], 'effective': ''})
        return {assignment['scope']['project']['id']
                for assignment in assignments['role_assignments']
                if 'project' in assignment.get('scope', {})}
