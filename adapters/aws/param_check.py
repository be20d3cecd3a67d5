"""Check every request against the constraints in botocore's service models.

botocore validates types, required members and minimum lengths, but not ``pattern``, ``max`` or
``enum``; moto enforces almost none of them either. Real AWS does (ARCHITECTURE.md, "Local AWS").
Installed on a client as a ``before-parameter-build`` handler, :func:`check_params` raises
:class:`AwsParamViolation` before a request that AWS would reject ever leaves the process::

    AwsClients(..., event_hooks=[HOOK])

Patterns in the models are Java regular expressions (``\\p{L}`` classes, ``\\uXXXX`` escapes), so
they are compiled with the ``regex`` module, with Java's ASCII meaning of ``\\w``, ``\\d`` and
``\\s`` and Java's ``.`` (any character but a line terminator: ``\\n \\r \\x85 \\u2028
\\u2029``) spelled out, and matched against the whole value as Java's ``String.matches`` does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import regex
from botocore.model import OperationModel, Shape

__all__ = ["HOOK", "AwsParamViolation", "ParamChecker", "check_members", "check_params", "compile_java_pattern"]

EVENT = "before-parameter-build"

# Java's predefined classes are ASCII-only (no UNICODE_CHARACTER_CLASS flag); \p{...} stays Unicode.
_JAVA_CLASSES_IN_SET = {"w": "a-zA-Z0-9_", "d": "0-9", "s": " \\t\\n\\x0B\\f\\r"}
_JAVA_CLASSES = {
    **{k: f"[{v}]" for k, v in _JAVA_CLASSES_IN_SET.items()},
    **{k.upper(): f"[^{v}]" for k, v in _JAVA_CLASSES_IN_SET.items()},
}


class AwsParamViolation(ValueError):
    """A request parameter breaks the operation's model: AWS would answer ValidationException.

    ``constraint`` is the broken rule in AWS's own words ("Member must have length less than or
    equal to 140"), for whoever answers as AWS does (the emulator)."""

    def __init__(self, operation: str, path: str, problem: str, constraint: str = "") -> None:
        super().__init__(f"{operation}: parameter {path} {problem}")
        self.operation = operation
        self.path = path
        self.problem = problem
        self.constraint = constraint


# Java's `.` (without DOTALL or UNIX_LINES) matches anything but its line terminators.
_JAVA_DOT = "[^\\n\\r\\x85\\u2028\\u2029]"


def _translate(pattern: str) -> str:
    # A pattern with an inline (?s) flag keeps its dots as they are: there `.` matches everything.
    java_dot = "(?s" not in pattern
    out: list[str] = []
    in_set = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if in_set and nxt in _JAVA_CLASSES_IN_SET:
                out.append(_JAVA_CLASSES_IN_SET[nxt])
            elif not in_set and nxt in _JAVA_CLASSES:
                out.append(_JAVA_CLASSES[nxt])
            else:
                # Inside a set, \W \D \S keep their Unicode meaning: they differ from Java's only
                # on non-ASCII whitespace and digits, and the models use them alone (``[\S]+``).
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[" and not in_set:
            in_set = True
            out.append(char)
            # A ']' right after '[' or '[^' is a literal, not the end of the set.
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                out.append("^")
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                out.append("\\]")
                j += 1
            i = j
            continue
        if char == "]" and in_set:
            in_set = False
        if char == "." and not in_set and java_dot:
            out.append(_JAVA_DOT)
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=512)
def compile_java_pattern(pattern: str) -> regex.Pattern[str]:
    """Compile a botocore model ``pattern`` (Java syntax) with Java's semantics."""
    return regex.compile(_translate(pattern), regex.VERSION0)


class _Walker:
    def __init__(self, operation: str) -> None:
        self.operation = operation

    def fail(self, path: str, problem: str, constraint: str = "") -> None:
        raise AwsParamViolation(self.operation, path, problem, constraint)

    def walk(self, shape: Shape, value: Any, path: str, sensitive: bool) -> None:
        sensitive = sensitive or bool(shape.metadata.get("sensitive"))
        kind = shape.type_name
        # Wrong types are botocore's own validator's business (it runs right after this hook).
        if kind == "structure" and isinstance(value, Mapping):
            if getattr(shape, "is_document_type", False):
                return
            for name, member_value in value.items():
                member = shape.members.get(name)
                if member is not None:
                    self.walk(member, member_value, f"{path}.{name}" if path else name, sensitive)
        elif kind == "list" and isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            self.length(shape, len(value), path, "items")
            for index, item in enumerate(value):
                self.walk(shape.member, item, f"{path}[{index}]", sensitive)
        elif kind == "map" and isinstance(value, Mapping):
            self.length(shape, len(value), path, "entries")
            for key, item in value.items():
                self.walk(shape.key, key, f"{path} key", sensitive)
                shown = "<sensitive>" if sensitive or shape.key.metadata.get("sensitive") else repr(key)
                self.walk(shape.value, item, f"{path}[{shown}]", sensitive)
        elif kind == "string" and isinstance(value, str):
            self.string(shape, value, path, sensitive)
        elif kind == "blob" and isinstance(value, (bytes, bytearray, str)):
            self.length(shape, len(value), path, "bytes")
        elif kind in ("integer", "long", "float", "double") and isinstance(value, (int, float)) and not isinstance(value, bool):
            low, high = shape.metadata.get("min"), shape.metadata.get("max")
            if low is not None and value < low:
                self.fail(path, f"is {value}, below the minimum {low}", f"Member must have value greater than or equal to {low}")
            if high is not None and value > high:
                self.fail(path, f"is {value}, above the maximum {high}", f"Member must have value less than or equal to {high}")

    def length(self, shape: Shape, size: int, path: str, unit: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and size < low:
            self.fail(path, f"has {size} {unit}, fewer than the minimum {low}", f"Member must have length greater than or equal to {low}")
        if high is not None and size > high:
            self.fail(path, f"has {size} {unit}, more than the maximum {high}", f"Member must have length less than or equal to {high}")

    def string(self, shape: Shape, value: str, path: str, sensitive: bool) -> None:
        shown = "<sensitive value>" if sensitive else repr(value)
        enum = shape.enum
        if enum and value not in enum:
            self.fail(path, f"= {shown} is not one of {sorted(enum)}", f"Member must satisfy enum value set: [{', '.join(enum)}]")
        self.length(shape, len(value), path, "characters")
        pattern = shape.metadata.get("pattern")
        if pattern is not None and not compile_java_pattern(pattern).fullmatch(value):
            self.fail(path, f"= {shown} does not match the pattern {pattern}", f"Member must satisfy regular expression pattern: {pattern}")


def check_params(params: dict[str, Any], model: OperationModel, **kwargs: Any) -> None:
    """botocore ``before-parameter-build`` handler: raise AwsParamViolation on a bad parameter.

    The message names the operation, the parameter's path and the broken rule; the value is shown
    unless the model marks the shape (or an enclosing one) ``sensitive``.
    """
    if model.input_shape is None:
        return
    operation = f"{model.service_model.service_id}.{model.name}"
    _Walker(operation).walk(model.input_shape, params, "", False)


def check_members(model: OperationModel, params: Mapping[str, Any], members: Iterable[str]) -> None:
    """:func:`check_params` for some top-level members of the request only (those given that
    the operation has); raises :class:`AwsParamViolation` on the first broken rule."""
    if model.input_shape is None:
        return
    walker = _Walker(f"{model.service_model.service_id}.{model.name}")
    shapes = model.input_shape.members
    for name in members:
        if name in params and name in shapes:
            walker.walk(shapes[name], params[name], name, False)


class ParamChecker:
    """:func:`check_params` with a count of the requests it checked (so a test can assert that the
    checker really saw the calls). One instance per test or per client set, never shared state."""

    def __init__(self) -> None:
        self.checked = 0
        self.operations: list[str] = []

    def __call__(self, params: dict[str, Any], model: OperationModel, **kwargs: Any) -> None:
        check_params(params, model, **kwargs)
        self.checked += 1
        self.operations.append(model.name)

    @property
    def hook(self) -> tuple[str, Callable[..., None]]:
        return (EVENT, self)


HOOK: tuple[str, Callable[..., None]] = (EVENT, check_params)
