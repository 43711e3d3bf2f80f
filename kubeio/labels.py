"""Label selectors in their string form (``kubectl -l``), matched on the client side.

Grammar, as the apiserver reads ``labelSelector`` (requirements are ANDed)::

    selector    := requirement ("," requirement)*
    requirement := key ("=" | "==" | "!=") value
                 | key ("in" | "notin") "(" value ("," value)* ")"
                 | key            # the label exists
                 | "!" key        # the label does not exist

Matching on the client lets a daemon watch every object of a kind and still tell "out of my
scope" from "deleted", which a server-side selector cannot (it reports both as DELETED).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_KEY_RE = re.compile(rf"^{_KEY}$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")
_SET_RE = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQUALITY_RE = re.compile(r"^(?P<key>[^!=\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>.*)$")


class InvalidSelector(ValueError):
    """A selector string that does not parse; the message quotes the bad part."""


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str  # "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "exists":
            return self.key in labels
        if self.operator == "!exists":
            return self.key not in labels
        if self.operator == "in":
            return self.key in labels and labels[self.key] in self.values
        return self.key not in labels or labels[self.key] not in self.values


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """An AND of requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Raises ``InvalidSelector`` naming the requirement that does not parse."""
        return cls(tuple(_parse_requirement(part) for part in _split(text)), text.strip())

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    def is_empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return self.text


def _split(text: str) -> list[str]:
    """Split on the commas that are not inside the parentheses of a set requirement."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise InvalidSelector(f"unbalanced ')' in {text!r}")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise InvalidSelector(f"unbalanced '(' in {text!r}")
    parts.append(current)
    stripped = [part.strip() for part in parts]
    if stripped == [""]:
        return []
    if "" in stripped:
        raise InvalidSelector(f"empty requirement in {text!r}")
    return stripped


def _key(key: str, requirement: str) -> str:
    if not _KEY_RE.match(key):
        raise InvalidSelector(f"invalid label key {key!r} in {requirement!r}")
    return key


def _value(value: str, requirement: str) -> str:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise InvalidSelector(f"invalid label value {value!r} in {requirement!r}")
    return value


def _parse_requirement(text: str) -> Requirement:
    match = _SET_RE.match(text)
    if match:
        values = [v.strip() for v in match["values"].split(",")]
        if values == [""]:
            raise InvalidSelector(f"empty value set in {text!r}")
        return Requirement(
            _key(match["key"], text),
            match["op"],
            frozenset(_value(v, text) for v in values),
        )
    match = _EQUALITY_RE.match(text)
    if match:
        operator = "notin" if match["op"] == "!=" else "in"
        value = _value(match["value"].strip(), text)
        return Requirement(_key(match["key"], text), operator, frozenset({value}))
    if text.startswith("!"):
        return Requirement(_key(text[1:].strip(), text), "!exists")
    return Requirement(_key(text, text), "exists")
