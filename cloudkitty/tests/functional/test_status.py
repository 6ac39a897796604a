"""``cloudkitty-status upgrade check`` on SQLite: each check's outcomes."""

import json

import pytest

from cloudkitty.cli import status
from cloudkitty import db
from cloudkitty.db import migration

HEAD = migration.head()
SUCCESS, WARNING, FAILURE = 0, 1, 2


def _url(tmp_path, name='ck'):
    return f'sqlite:///{tmp_path}/{name}.sqlite'


def _migrate(url, revision='head'):
    engine = db.create_engine(url)
    migration.upgrade(engine, revision)
    return engine


def _check(tmp_path, capsys, storage_url=None, policy=None):
    """Run the command with ``--json``: ``(status, {check: (code,
    details)})``."""
    config = tmp_path / 'cloudkitty.conf'
    text = f'[database]\nconnection = {_url(tmp_path)}\n'
    if storage_url:
        text += f'[storage_sqlalchemy]\nconnection = {storage_url}\n'
    config.write_text(text)
    if policy is not None:
        (tmp_path / 'policy.yaml').write_text(policy)
    code = status.main(['--config-file', str(config), 'upgrade', 'check',
                        '--json'])
    output = json.loads(capsys.readouterr().out)
    return code, {c['check']: (c['result'], c['details'])
                  for c in output['checks']}


def test_a_ready_deployment_passes(tmp_path, capsys):
    _migrate(_url(tmp_path)).dispose()
    assert _check(tmp_path, capsys, policy='"info:get_config": ""\n') == (
        SUCCESS, {
            'Database schema': (SUCCESS, f'schema at revision {HEAD}'),
            'Storage backend': (
                SUCCESS, "the 'sqlalchemy' storage is initialised"),
            'Policy file format': (SUCCESS, f'{tmp_path}/policy.yaml is '
                                   f'YAML')})


def test_an_empty_database_fails_both_schema_checks(tmp_path, capsys):
    code, checks = _check(tmp_path, capsys)
    assert code == FAILURE
    assert checks['Database schema'] == (
        FAILURE, 'the database has no schema: run cloudkitty-dbsync upgrade')
    result, details = checks['Storage backend']
    assert result == FAILURE
    assert details.startswith("the 'sqlalchemy' storage is not usable "
                              "(OperationalError: ")
    assert details.endswith('): run cloudkitty-storage-init')
    assert checks['Policy file format'] == (
        SUCCESS, "no policy file 'policy.yaml': the defaults in code apply")


def test_an_old_or_unknown_revision_fails(tmp_path, capsys):
    engine = _migrate(_url(tmp_path), '0005')
    code, checks = _check(tmp_path, capsys)
    assert (code, checks['Database schema']) == (FAILURE, (
        FAILURE, f'the schema is at revision 0005, this code needs {HEAD}: '
        f'run cloudkitty-dbsync upgrade'))
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = "
                             "'9999'")
    engine.dispose()
    code, checks = _check(tmp_path, capsys)
    assert checks['Database schema'] == (
        FAILURE, f'the schema is at revision 9999, unknown to this code '
        f'(which goes up to {HEAD}): was it migrated by a newer release?')


def test_a_storage_database_not_initialised_fails(tmp_path, capsys):
    _migrate(_url(tmp_path)).dispose()
    code, checks = _check(tmp_path, capsys,
                          storage_url=_url(tmp_path, 'rated'))
    assert code == FAILURE
    assert checks['Database schema'][0] == SUCCESS
    assert checks['Storage backend'][0] == FAILURE


@pytest.mark.parametrize('policy, expected', [
    ('{"info:get_config": ""}\n', (
        WARNING, '{path} is JSON, a deprecated format: convert it to YAML '
                 'with oslopolicy-convert-json-to-yaml')),
    ('"info:get_config": [\n', (
        FAILURE, "{path} is not valid YAML: expected the node content, "
                 "but found '<stream end>' (line 2, column 1)")),
    ('- a list\n', (
        FAILURE, '{path} must map rule names to rules, not hold a list')),
    ('', (SUCCESS, '{path} is YAML')),
])
def test_policy_file_format(tmp_path, capsys, policy, expected):
    _migrate(_url(tmp_path)).dispose()
    code, checks = _check(tmp_path, capsys, policy=policy)
    path = tmp_path / 'policy.yaml'
    assert code == expected[0]
    assert checks['Policy file format'] == (
        expected[0], expected[1].format(path=path))


def test_the_table_output(tmp_path, capsys):
    _migrate(_url(tmp_path)).dispose()
    config = tmp_path / 'cloudkitty.conf'
    config.write_text(f'[database]\nconnection = {_url(tmp_path)}\n')
    assert status.main(['--config-file', str(config), 'upgrade',
                        'check']) == SUCCESS
    lines = capsys.readouterr().out.splitlines()
    assert [line.strip('| ') for line in lines if line.startswith('|')][
        :4] == ['CloudKitty upgrade check results', 'Check: Database schema',
                'Result: Success', f'Details: schema at revision {HEAD}']
    assert len([line for line in lines if line.startswith('+--')]) == 5
