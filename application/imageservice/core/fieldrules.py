"""What one field of a request value accepts, as data, kept on the dataclass field itself.

A :class:`FieldRule` in a field's metadata is that field's one home: its JSON type, its choices,
its bounds and lengths, and the words that explain it. The value's ``__post_init__`` checks
itself against its rules (:func:`check_fields`), JSON becomes field values through them
(:func:`read_fields`), and the OpenAPI document publishes them (``web/api/openapi.py``), so the
checks and the document cannot drift apart (docs/API.md).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest

RULE = "rule"  # the metadata key a field's FieldRule sits under
NOT_BLANK = r"\S"  # a string with something other than white space in it


@dataclass(frozen=True)
class FieldRule:
    """The values a field accepts. ``kind`` is a JSON type (string, integer, number, boolean,
    object); ``object`` fields hold an instance of ``model``. A field whose default is None
    accepts None too (None means "not asked for"); a field without a default is required."""

    kind: str
    choices: tuple[str, ...] | None = None
    aliases: Mapping[str, str] | None = None  # other spellings of a choice, read as that choice
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    not_blank: bool = False
    model: type | None = None
    description: str = ""

    @property
    def pattern(self) -> str | None:
        return NOT_BLANK if self.not_blank else None

    def accepts(self, value: Any) -> bool:
        # Written as "not (value >= bound)" so that NaN, which compares false, is refused.
        if not self._is_kind(value):
            return False
        if self.choices is not None and value not in self.choices:
            return False
        if self.minimum is not None and not value >= self.minimum:
            return False
        if self.maximum is not None and not value <= self.maximum:
            return False
        if self.min_length is not None and len(value) < self.min_length:
            return False
        if self.max_length is not None and len(value) > self.max_length:
            return False
        return self.pattern is None or re.search(self.pattern, value) is not None

    def expected(self) -> str:
        """What the field takes, in words, for the error that refuses a value."""
        if self.choices is not None:
            return f"one of {', '.join(self.choices)}"
        if self.kind == "boolean":
            return "true or false"
        if self.kind == "object":
            return "an object"
        if self.kind in ("integer", "number"):
            words = "a whole number" if self.kind == "integer" else "a number"
            low = "" if self.minimum is None else f" from {self.minimum}"
            return words + low + (" up" if self.maximum is None else f" to {self.maximum}")
        length = (f"{self.min_length or 0} to {self.max_length} characters" if self.max_length is not None
                  else f"at least {self.min_length or 0} character" + ("" if self.min_length == 1 else "s"))
        return length + (", not all blank" if self.not_blank else "")

    def _is_kind(self, value: Any) -> bool:
        if self.kind == "boolean":
            return isinstance(value, bool)
        if self.kind == "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        if self.kind == "number":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind == "object":
            return self.model is not None and isinstance(value, self.model)
        return isinstance(value, str)


def ruled(rule: FieldRule, default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field holding ``rule``: ``quality: int | None = ruled(FieldRule(...), None)``."""
    return dataclasses.field(default=default, metadata={RULE: rule})


def rules(model: type) -> list[tuple[dataclasses.Field, FieldRule]]:
    """The model's fields that carry a rule, in declaration order."""
    return [(f, f.metadata[RULE]) for f in dataclasses.fields(model) if RULE in f.metadata]


def is_required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def is_nullable(field: dataclasses.Field) -> bool:
    return field.default is None


def check_fields(value: Any, prefix: str = "") -> None:
    """Every ruled field of ``value`` against its rule; ``prefix`` names where the value sits
    (``"watermark."``).  Raises BadRequest(code="invalid_parameter") naming the first bad field."""
    for field, rule in rules(type(value)):
        current = getattr(value, field.name)
        if current is None and is_nullable(field):
            continue
        if not rule.accepts(current):
            raise BadRequest(f"{prefix}{field.name} must be {rule.expected()}.", code="invalid_parameter")


def read_fields(model: type, params: Mapping[str, Any]) -> dict[str, Any]:
    """The model's fields that ``params`` (decoded JSON) gives, with JSON's spellings read: a
    whole number may come as ``300.0`` (JSON has one number type), a choice in any case or as
    one of its aliases (``"JPG"``). Absent fields are left to the model's defaults, a required
    one is read as None (which its check refuses); the values are checked where the model is
    constructed."""
    values = {}
    for field, rule in rules(model):
        if field.name not in params:
            if is_required(field):
                values[field.name] = None
            continue
        value = params[field.name]
        if rule.kind == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif rule.choices is not None and isinstance(value, str):
            value = (rule.aliases or {}).get(value.lower(), value.lower())
        values[field.name] = value
    return values
