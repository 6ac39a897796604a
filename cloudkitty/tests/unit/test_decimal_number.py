"""cloudkitty.dataframe.decimal_number: the one Decimal validator."""

import decimal

import pytest
import voluptuous

from cloudkitty import dataframe

D = decimal.Decimal


@pytest.mark.parametrize('value, expected', [
    (3, D(3)), ('1.50', D('1.50')), (' 2 ', D(2)), (0.1, D('0.1')),
    (D('1E+2'), D('1E+2')), ('-0.000000000000000000000000001', D('-1E-27')),
])
def test_numbers_become_decimals_digit_for_digit(value, expected):
    result = dataframe.decimal_number(value)
    assert type(result) is D
    assert result == expected
    assert str(result) == str(expected)


@pytest.mark.parametrize('value, message', [
    (True, 'expected a number'),
    ('lots', "'lots' is not a quantity or a price"),
    ('NaN', "'NaN' is not a finite number"),
    (float('inf'), "'inf' is not a finite number"),
    (None, 'None is not a quantity or a price'),
])
def test_anything_else_is_invalid_and_named(value, message):
    with pytest.raises(voluptuous.Invalid) as caught:
        dataframe.decimal_number(value)
    assert caught.value.msg == message


def test_in_a_schema():
    schema = voluptuous.Schema({'cost': dataframe.decimal_number})
    assert schema({'cost': '0.25'}) == {'cost': D('0.25')}
    with pytest.raises(voluptuous.MultipleInvalid, match=r"data\['cost'\]"):
        schema({'cost': False})
