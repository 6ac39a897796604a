"""The sqlalchemy backend's pieces that need no database."""

import datetime
import decimal

import pytest

from cloudkitty.db import types as db_types
from cloudkitty.storage.v2.sqlalchemy import dialects
from cloudkitty.storage.v2.sqlalchemy import writes

D = decimal.Decimal


@pytest.mark.parametrize('column, value, text', [
    (db_types.PRICE, D('0.1'), '0.1'),
    (db_types.PRICE, D('0.00000000000000000000000000015'),
     '2E-28'),
    (db_types.PRICE, D('-0.00000000000000000000000000015'),
     '-2E-28'),
    (db_types.PRICE, D('0.00000000000000000000000000014'), '1E-28'),
    # A tie after an even digit: half-even would give 2E-28.
    (db_types.PRICE, D('0.00000000000000000000000000025'), '3E-28'),
    (db_types.PRICE, D('999999999999.9999999999999999999999999999'),
     '999999999999.9999999999999999999999999999'),
    (db_types.QTY, D('99999999999999999999.5'), '99999999999999999999.5'),
    (db_types.QTY, D('1E+5'), '1E+5'),
])
def test_sqlite_decimal_rounds_half_up_at_28_digits(column, value, text):
    sqlite_type = column._variant_mapping['sqlite']
    assert sqlite_type.to_text(value) == text


@pytest.mark.parametrize('column, value', [
    (db_types.PRICE, D(10) ** 12),
    (db_types.PRICE, -D(10) ** 12),
    (db_types.QTY, D(10) ** 20),
    (db_types.QTY, D('99999999999999999999.99999999999999999999999999995')),
])
def test_sqlite_decimal_refuses_what_numeric_refuses(column, value):
    with pytest.raises(ValueError):
        column._variant_mapping['sqlite'].to_text(value)


def test_sqlite_decimal_sum_is_exact():
    total = dialects.SQLiteDecimalSum()
    assert total.finalize() is None
    for value in ('999999999999.9999999999999999999999999999',
                  '0.0000000000000000000000000001', None, 3):
        total.step(value)
    assert total.finalize() == '1000000000003.0000000000000000000000000000'
    many = dialects.SQLiteDecimalSum()
    for _ in range(10001):  # more than a block
        many.step('0.0000000000000000000000000001')
    many.step('99999999999999999999')
    assert many.finalize() == (
        '99999999999999999999.0000000000000000000000010001')


def test_copy_text_escapes_and_remembers():
    text = dialects.CopyText()
    assert text['a\\b\tc\nd\re'] == 'a\\\\b\\tc\\nd\\re'
    assert text[None] == '\\N'
    assert text[datetime.datetime(2024, 3, 1, 1, 2, 3, 4)] == (
        '2024-03-01 01:02:03.000004')
    assert len(text) == 3


def test_label_ids_are_stable():
    # Label ids are stored: they must not change between releases.
    label = writes.Label.of(
        'GB', 'Volumes', {'project_id': 'p1', 'id': 'v1', 'month': '3'},
        {'volume_type': 'ssd', 'size': 10})
    assert label.canonical == (
        '["GB","Volumes",{"id":"v1","month":"3","project_id":"p1"},'
        '{"size":10,"volume_type":"ssd"}]')
    assert writes.label_hash(label.canonical) == 1940329214523783444
    reordered = writes.Label.of(
        'GB', 'Volumes', {'month': '3', 'id': 'v1', 'project_id': 'p1'},
        {'size': 10, 'volume_type': 'ssd'})
    assert reordered == label


def test_label_json_writes_decimals_as_numbers():
    label = writes.Label.of('u', None, {'a': D('1.50')}, {})
    assert label.canonical == '["u",null,{"a":1.50},{}]'
