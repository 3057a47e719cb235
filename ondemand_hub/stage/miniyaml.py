"""A strict reader for the small YAML subset that stage.yml uses.

ondemand-stage runs as root and imports only the standard library and jinja2, so it cannot use
PyYAML. stage.yml is a flat mapping, so this reader accepts exactly that: ``key: scalar``,
``key: [a, b]`` flow lists and block lists of scalars (``- item`` lines under ``key:``).
Scalars are integers, floats, ``true``/``false``, ``null``/``~``, or strings (bare or quoted).
Anything else is an error that names the line, never a silent guess.
"""

from __future__ import annotations

import re

_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:(?:\s+(.*))?$")
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)$")


class MiniYAMLError(ValueError):
    """The text is outside the supported subset; the message names the line."""


def _strip_comment(line: str) -> str:
    """Remove a trailing ``# comment`` that is not inside quotes."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def parse_scalar(text: str, lineno: int) -> object:
    """Turn one scalar's text into int, float, bool, None or str."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text[:1] in "'\"":
        raise MiniYAMLError(f"line {lineno}: unterminated quoted string")
    if text[:1] in "{&*!|>@`":
        raise MiniYAMLError(f"line {lineno}: unsupported YAML syntax {text[:1]!r}")
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("null", "~", ""):
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def _parse_flow_list(text: str, lineno: int) -> list:
    inner = text.strip()[1:-1].strip()
    if not inner:
        return []
    return [parse_scalar(item, lineno) for item in inner.split(",")]


def loads(text: str) -> dict:
    """Parse stage.yml text into a dict; raise MiniYAMLError naming the line on anything else."""
    result: dict = {}
    current_list: list | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        if not line.strip() or line.strip() == "---":
            continue
        if line[0] in " \t" or line.startswith("-"):
            item = line.strip()
            if current_list is None or not item.startswith("- "):
                raise MiniYAMLError(f"line {lineno}: unexpected indentation or list item")
            current_list.append(parse_scalar(item[2:], lineno))
            continue
        match = _KEY.match(line)
        if not match:
            raise MiniYAMLError(f"line {lineno}: expected 'key: value'")
        key, value = match.group(1), (match.group(2) or "").strip()
        if key in result:
            raise MiniYAMLError(f"line {lineno}: duplicate key {key!r}")
        current_list = None
        if not value:
            current_list = result[key] = []
        elif value.startswith("["):
            if not value.endswith("]"):
                raise MiniYAMLError(f"line {lineno}: unterminated list")
            result[key] = _parse_flow_list(value, lineno)
        else:
            result[key] = parse_scalar(value, lineno)
    return result
