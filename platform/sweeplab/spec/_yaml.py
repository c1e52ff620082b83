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


# A study is a few hundred values; aliases that expand past this are a mistake or an attack ("billion laughs").
MAX_EXPANDED_VALUES = 100_000


def load_with_lines(text: str) -> tuple[Any, dict[Location, int]]:
    """Parse ``text``; return the data and a map from each value's location (keys and indices) to its line.

    Every node is converted once, however many aliases name it (linear time); a document whose aliases expand
    to more than ``MAX_EXPANDED_VALUES`` values is refused before anything is expanded."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _check_expansion(node)
        converted = _Converter(loader).convert(node)
    except yaml.MarkedYAMLError as error:
        raise _marked(error) from None
    finally:
        loader.dispose()
    value, relative_lines = converted
    return value, dict(relative_lines)


def _marked(error: yaml.MarkedYAMLError) -> YamlError:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark is not None else None
    message = f"invalid YAML: {error.problem or error}"
    if error.context and error.context_mark is not None and error.context_mark is not mark:
        message += f" ({error.context} on line {error.context_mark.line + 1})"
    return YamlError(message, line)


def _children(node: yaml.Node) -> list[tuple[yaml.Node | None, yaml.Node]]:
    """``(key node, value node)`` pairs of a mapping, ``(None, item)`` of a sequence, none of a scalar."""
    if isinstance(node, yaml.MappingNode):
        return list(node.value)
    if isinstance(node, yaml.SequenceNode):
        return [(None, item) for item in node.value]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Count the values the document expands to, each shared node counted once (memoised, linear time): refuse a
    recursive alias, or an expansion past ``MAX_EXPANDED_VALUES``, naming the line of the smallest node that
    expands past it (where its anchor is defined)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            raise YamlError("an alias refers to the node that contains it", node.start_mark.line + 1)
        open_nodes.add(id(node))
        total = 1 + sum(size(value) + (size(key) if key is not None else 0) for key, value in _children(node))
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    if size(root) <= MAX_EXPANDED_VALUES:
        return
    node = root
    while True:
        larger = [value for _, value in _children(node) if sizes[id(value)] > MAX_EXPANDED_VALUES]
        if not larger:
            break
        node = larger[0]
    raise YamlError(
        f"aliases expand this document past {MAX_EXPANDED_VALUES:,} values: write the values out, or alias less deeply",
        node.start_mark.line + 1,
    )


class _Converter:
    """Nodes to Python values with their lines; a node named by several aliases is converted once, its value
    shared and its lines copied under each place that names it."""

    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.done: dict[int, tuple[Any, list[tuple[Location, int]]]] = {}

    def convert(self, node: yaml.Node) -> tuple[Any, list[tuple[Location, int]]]:
        """The node's value, and the line of every location inside it (relative to the node)."""
        if id(node) not in self.done:
            self.done[id(node)] = self._convert(node)
        return self.done[id(node)]

    def _convert(self, node: yaml.Node) -> tuple[Any, list[tuple[Location, int]]]:
        lines: list[tuple[Location, int]] = [((), node.start_mark.line + 1)]
        if isinstance(node, yaml.MappingNode):
            written = [key_node for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge"]
            seen: set[Any] = set()
            for key_node in written:  # a key written twice is a mistake; one that overrides a merged (<<) key is not
                key = self._scalar(key_node)
                if key in seen:
                    raise YamlError(f"duplicate key {key!r}", key_node.start_mark.line + 1, (key,))
                seen.add(key)
            self.loader.flatten_mapping(node)  # merged pairs first, then the written ones: later pairs win
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                result[key], inner = self.convert(value_node)
                lines += [((key, *location), line) for location, line in inner]
                lines.append(((key,), key_node.start_mark.line + 1))
            return result, lines
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item_node in enumerate(node.value):
                item, inner = self.convert(item_node)
                items.append(item)
                lines += [((index, *location), line) for location, line in inner]
            return items, lines
        return self._construct(node), lines

    def _scalar(self, key_node: yaml.Node) -> Any:
        if not isinstance(key_node, yaml.ScalarNode):
            raise YamlError("mapping keys must be plain scalars", key_node.start_mark.line + 1)
        return self._construct(key_node)

    def _construct(self, node: yaml.ScalarNode) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError:
            raise
        except Exception as error:  # ``!!int ten``: the tag's constructor rejects the text
            tag = node.tag.removeprefix("tag:yaml.org,2002:")
            raise YamlError(f"{node.value!r} is not a valid {tag} ({error})", node.start_mark.line + 1) from None
