"""YAML loading that remembers where every value came from, so errors can name the line."""

from __future__ import annotations

import re
from typing import Any

import yaml

Location = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``; users write ``1e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class YamlError(ValueError):
    """A document that is not valid YAML, or not shaped as one study; ``line`` is 1-based."""

    def __init__(self, message: str, line: int | None, location: Location = ()) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.location = location


def load_with_lines(text: str) -> tuple[Any, dict[Location, int]]:
    """Parse ``text``; return the data and a map from each value's location (keys and indices) to its line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        message = f"invalid YAML: {error.problem or error}"
        if error.context and error.context_mark is not None and error.context_mark is not mark:
            message += f" ({error.context} on line {error.context_mark.line + 1})"
        raise YamlError(message, line) from None
    finally:
        loader.dispose()
    lines: dict[Location, int] = {}
    if node is None:
        return None, lines
    return _convert(loader, node, (), lines), lines


def _convert(loader: _Loader, node: yaml.Node, location: Location, lines: dict[Location, int]) -> Any:
    lines[location] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        written = [key_node for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge"]
        seen: set[Any] = set()
        for key_node in written:  # a key written twice is a mistake; one that overrides a merged (<<) key is not
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                raise YamlError("mapping keys must be plain scalars", key_node.start_mark.line + 1, location)
            if key in seen:
                raise YamlError(f"duplicate key {key!r}", key_node.start_mark.line + 1, location + (key,))
            seen.add(key)
        loader.flatten_mapping(node)  # merged pairs first, then the written ones: later pairs win
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            result[key] = _convert(loader, value_node, location + (key,), lines)
            lines[location + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, location + (index,), lines) for index, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
