"""What `krp stack submit` reads: a stack document from a JSON or YAML file (or stdin),
and --param NAME=VALUE pairs for a blueprint. Either is refused with a message naming the
file or the option, never a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import CommandError

from provisioning.api.limits import object_without_duplicate_keys
from provisioning.errors import KrpError


class _YamlLoader(yaml.SafeLoader):
    """Refuses a key given twice, as the JSON reading does (not "last one wins")."""

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears more than once", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_document(path: str) -> Any:
    """A stack document from a JSON or YAML file, or `-` for stdin."""
    where = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{where}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise CommandError(f"{where}: not a UTF-8 text file") from None
    try:
        document = json.loads(text, object_pairs_hook=object_without_duplicate_keys)
    except json.JSONDecodeError as exc:
        if path.endswith(".json"):
            raise CommandError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} "
                               f"column {exc.colno})") from None
        document = _yaml(text, where)
    except KrpError as exc:
        raise CommandError(f"{where}: {exc.message.removeprefix('body: ')}") from None
    except RecursionError:
        raise CommandError(f"{where}: nested too deeply") from None
    return document


def _yaml(text: str, where: str) -> Any:
    try:
        document = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader
        # What YAML reads and JSON has no type for (a date, a set) would not store.
        json.dumps(document)
    except yaml.YAMLError as exc:
        raise CommandError(f"{where}: neither JSON nor YAML ({' '.join(str(exc).split())})"
                           ) from None
    except (TypeError, ValueError) as exc:
        raise CommandError(f"{where}: {exc} (quote it to make it a string)") from None
    except RecursionError:
        raise CommandError(f"{where}: nested too deeply") from None
    return document


def parameters_given(pairs: list[str]) -> dict[str, Any]:
    """--param NAME=VALUE: the value as JSON where it reads as JSON (3, true, [..]), else
    the string as given."""
    parameters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--param {pair!r}: use NAME=VALUE")
        if key in parameters:
            raise CommandError(f"--param {key!r} is given twice")
        try:
            parameters[key] = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            parameters[key] = value
    return parameters
