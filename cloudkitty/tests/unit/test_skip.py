"""Skip expressions are compiled from a whitelisted subset of Python."""

import decimal

import pytest

from cloudkitty import dataframe
from cloudkitty.orchestrator import skip

POINT = dataframe.DataPoint(
    'instance', '2.5', '0.75',
    {'project_id': 'p1', 'flavor': 'm1.tiny', 'count': 3},
    {'image': 'cirros', 'ram': 512, 'flavor': 'meta-flavor'},
    'an instance')


def holds(expression, point=POINT):
    return skip.compile_expression(expression)(point)


@pytest.mark.parametrize('expression', ['', '   ', None])
def test_empty_expression_skips_nothing(expression):
    assert skip.compile_expression(expression) is None


@pytest.mark.parametrize('expression, expected', [
    ('datapoint.qty == 2.5', True),
    ('datapoint.qty == 0', False),
    ('datapoint.qty > 2 and datapoint.price < 1', True),
    ('datapoint.qty > 3 or datapoint.unit == "instance"', True),
    ('not datapoint.qty', False),
    ('0 < datapoint.qty <= 2.5', True),
    ('0 < datapoint.qty < 2.5', False),
    ('1 < 2 < datapoint.qty < 2', False),
    ('datapoint.qty * datapoint.price == 1.875', True),
    ('datapoint.qty + 0.1 == 2.6', True),
    ('datapoint.qty / 3 > 0.8333', True),
    ('datapoint.qty // 1 == 2 and datapoint.qty % 1 == 0.5', True),
    ('datapoint.qty ** 2 == 6.25', True),
    ('-datapoint.qty == -2.5 and +datapoint.qty == 2.5', True),
    ('datapoint.groupby["flavor"] == "m1.tiny"', True),
    ("datapoint.groupby['flavor'] in ['m1.tiny', 'm1.small']", True),
    ("datapoint.groupby['flavor'] not in ('m1.tiny',)", False),
    ("datapoint.groupby['flavor'] in {'m1.tiny'}", True),
    ("datapoint.metadata.get('image') == 'cirros'", True),
    ("datapoint.metadata.get('missing') is None", True),
    ("datapoint.metadata.get('missing', 'x') == 'x'", True),
    ("datapoint.desc['flavor'] == 'm1.tiny'", True),  # groupby wins
    ("datapoint.metadata['ram'] >= 512", True),
    ("datapoint.groupby['count'] * 2 == 6", True),
    ("datapoint.description == 'an instance'", True),
    ("datapoint.description is not None", True),
    ("Decimal(datapoint.metadata['ram']) / 1024 == 0.5", True),
    ("Decimal('0.1') + Decimal('0.2') == 0.3", True),
    ("len(datapoint.groupby) == 3", True),
    ("str(datapoint.metadata['ram']) == '512'", True),
    ("abs(-datapoint.qty) == 2.5", True),
    ("min(datapoint.qty, 1) == 1 and max(datapoint.qty, 1, 7) == 7", True),
    ("datapoint.unit.startswith('inst') and datapoint.unit.endswith('ce')",
     True),
    ("datapoint.metadata['image'].upper() == 'CIRROS'", True),
    ("' X '.strip().lower() == 'x'", True),
    ("datapoint.unit + '-x' == 'instance-x'", True),
    ("datapoint.qty if datapoint.qty > 10 else 0", False),
    ("True", True),
    ("False or None", False),
])
def test_allowed_expressions(expression, expected):
    assert holds(expression) is expected


def test_arithmetic_is_decimal():
    # With floats 0.1 + 0.2 != 0.3; the expression must compute in Decimal.
    assert holds('0.1 + 0.2 == 0.3')
    point = POINT._replace(qty=decimal.Decimal('0.1'))
    assert holds('datapoint.qty * 3 == 0.3', point)


@pytest.mark.parametrize('expression, what', [
    ('__import__("os").system("true")', "'__import__'"),
    ('open("/etc/passwd")', "'open'"),
    ('eval("1")', "'eval'"),
    ('datapoint.qty.__class__', 'attribute'),
    ('datapoint.__class__', 'datapoint.__class__'),
    ('datapoint._replace(qty=0)', 'keyword arguments'),
    ('datapoint.as_dict()', 'datapoint.as_dict'),
    ('x == 1', "name 'x'"),
    ('Decimal', 'without a call'),
    ('(lambda: 1)()', 'call'),
    ('lambda: 1', 'lambda'),
    ('[p for p in datapoint.groupby]', 'list comprehension'),
    ('{k: 1 for k in "ab"}', 'dict comprehension'),
    ('{"a": 1}', 'dict literal'),
    ('f"{datapoint.qty}"', 'f-string'),
    ('(y := 1)', ':='),
    ('datapoint.unit[0:2]', 'slice'),
    ('datapoint.qty & 1', '&'),
    ('~datapoint.qty', '~'),
    ('b"bytes"', 'constant'),
    ('1j', 'constant'),
    ('len(*datapoint.groupby)', 'starred'),
    ('len(1, 2)', 'len() with 2 arguments'),
    ('datapoint.groupby.get()', '.get() with 0 arguments'),
    ('datapoint.groupby.keys()', 'method .keys()'),
    ('datapoint.unit.format(1)', 'method .format()'),
])
def test_refused_expressions(expression, what):
    with pytest.raises(skip.InvalidSkipExpression) as raised:
        skip.compile_expression(expression, "metric 'cpu'")
    message = str(raised.value)
    assert "metric 'cpu'" in message
    assert expression.strip() in message
    assert 'not allowed' in message
    assert what in message


@pytest.mark.parametrize('expression', ['datapoint.qty ==', 'import os',
                                        'x = 1', 'datapoint.qty; 1'])
def test_syntax_errors_are_refused(expression):
    with pytest.raises(skip.InvalidSkipExpression,
                       match='not a valid expression'):
        skip.compile_expression(expression)


@pytest.mark.parametrize('expression', [
    "datapoint.groupby['missing'] == 1",
    "datapoint.unit * 3 == 'x'",
    "'%s' % datapoint.unit == 'x'",
    "datapoint.groupby * 2",
    "datapoint.unit['a']",
    "datapoint.unit.get('a')",
    "datapoint.groupby.lower()",
    "Decimal('abc') == 1",
    "datapoint.qty / 0 == 1",
    "10 ** 10 ** 9 > 1",
    "datapoint.unit > 1",
])
def test_evaluation_errors_are_reported(expression):
    predicate = skip.compile_expression(expression)
    with pytest.raises(skip.SkipEvaluationError, match='failed on a point'):
        predicate(POINT)


def test_metric_predicates_by_type():
    metrics = {
        'cpu': [{'alt_name': 'instance', 'unit': 'instance',
                 'skip_datapoints_expression': 'datapoint.qty == 0'},
                {'alt_name': 'vcpus', 'unit': 'vcpu'}],
        'image.size': {'alt_name': 'image', 'unit': 'MiB',
                       'skip_datapoints_expression': ''},
        'volume.size': {'unit': 'GiB',
                        'skip_datapoints_expression': 'datapoint.qty < 1'},
    }
    default, by_type = skip.compile_metric_predicates(
        metrics, 'datapoint.price == 0')
    assert sorted(by_type) == ['instance', 'volume.size']
    zero = POINT._replace(qty=decimal.Decimal(0), price=decimal.Decimal(1))
    assert by_type['instance'](zero)
    assert not default(zero)
    assert by_type['volume.size'](zero)


def test_metric_predicates_name_the_metric():
    metrics = {'cpu': {'unit': 'x', 'skip_datapoints_expression': 'os.x'}}
    with pytest.raises(skip.InvalidSkipExpression,
                       match="metric 'cpu': skip_datapoints_expression"):
        skip.compile_metric_predicates(metrics, '')
    with pytest.raises(skip.InvalidSkipExpression,
                       match=r'\[orchestrator\] skip_datapoints_expression'):
        skip.compile_metric_predicates({}, 'import os')
