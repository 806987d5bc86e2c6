"""What web/api/schemas.py relies on in marshmallow: fails on an upgrade that changes it."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError, fields


@pytest.mark.parametrize("value", [True, False])
def test_a_strict_integer_field_refuses_true_and_false(value):
    # Tonnes are whole numbers in JSON: a boolean (an int to Python) is not one.
    with pytest.raises(ValidationError, match="Not a valid integer"):
        fields.Integer(strict=True).deserialize(value)
