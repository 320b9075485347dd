"""Reading a stack file's YAML defensively.

PyYAML reads YAML 1.1, which quietly changes what a reviewer sees: `010` becomes 8, `1:30`
becomes 90, `no` becomes False, and a key written twice keeps only its last value. A small file
can also expand, through aliases, into more values than any stack has. This module reads the
text with those traps made visible:

- the file is capped in size, and the node graph is walked before anything is built, refusing
  cycles, nesting deeper than any stack needs, and alias expansion past a bound;
- a key written twice in one mapping, at any depth, is refused with both lines;
- every unquoted scalar that YAML 1.1 would turn into a number or a boolean is built as a
  ``Plain`` (its text as written, its YAML value, its line), so ``resolve_plain`` can decide per
  field: a "quote it" refusal for a YAML 1.1 trap (yes/no/on/off only where no boolean
  belongs), the text as written for versions, the value elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import yaml

MAX_BYTES = 1 << 20
# Far above any real stack (a 100-endpoint stack is about 2,000 values), far below what would
# make validation slow.
MAX_VALUES = 50_000
MAX_DEPTH = 32

_MERGE = "tag:yaml.org,2002:merge"
# YAML 1.1 readings that differ from what the text shows: octal-looking (`010` is 8) and
# sexagesimal (`1:30` is 90, `190:20:30.15`). Grouped digits (`1_000`) and hex (`0x1f`) read as
# written and are left alone.
_NUMBER_TRAP = re.compile(r"[-+]?(0[0-9_]+|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?)")
_BOOL_WORDS = frozenset({"yes", "no", "on", "off", "y", "n"})
# Text to YAML 1.1 but a number to YAML 1.2's core schema, which Pulumi's own reader follows:
# `0o17` is 15 there, `09` is 9, `1e3` is 1000.
_TEXT_TRAP = re.compile(r"0o[0-7]+|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def yaml12_number(text: str) -> int | float:
    """What YAML 1.2's core schema reads a ``_TEXT_TRAP`` text as."""
    if text.startswith("0o"):
        return int(text[2:], 8)
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    return float(text)


class YamlProblem(Exception):
    """A defect found while reading the YAML, at a path of raw keys and indexes; ``endpoints``
    holds ``{"name": ...}`` per endpoint entry as written, so the path can name endpoints."""

    def __init__(self, path: tuple[Any, ...], message: str, endpoints: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.endpoints = endpoints or []


def _endpoint_names(root: yaml.Node) -> list[dict[str, Any]]:
    """The names the endpoint entries write, read from the nodes (nothing is built yet)."""

    def get(node: yaml.Node, want: Any) -> yaml.Node | None:
        if not isinstance(node, yaml.MappingNode):
            return None
        return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and want(k.value)), None)

    config = get(root, lambda key: key == "config")
    endpoints = get(config, lambda key: key.rpartition(":")[2] == "endpoints") if config else None
    if not isinstance(endpoints, yaml.SequenceNode):
        return []
    names = []
    for item in endpoints.value:
        name = get(item, lambda key: key == "name")
        names.append({"name": name.value} if isinstance(name, yaml.ScalarNode) else {})
    return names


@dataclass(frozen=True)
class Plain:
    """An unquoted scalar that YAML 1.1 reads as a number or a boolean."""

    text: str
    value: Any
    line: int

    @property
    def trap(self) -> bool:
        """Whether a YAML reader turns the text into something other than what it shows."""
        if isinstance(self.value, bool):
            return self.text.lower() in _BOOL_WORDS
        if isinstance(self.value, str):
            return _TEXT_TRAP.fullmatch(self.text) is not None
        return _NUMBER_TRAP.fullmatch(self.text) is not None


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (libyaml's parser when present) building ``Plain`` for unquoted numbers and
    booleans."""


def _plain(loader: Any, node: yaml.ScalarNode, build: Any) -> Any:
    value = build(loader, node)
    if not node.style:  # unquoted (None from PyYAML, "" from libyaml): resolved by YAML's implicit rules
        return Plain(str(node.value), value, node.start_mark.line + 1)
    return value


def _plain_text(loader: Any, node: yaml.ScalarNode) -> Any:
    value = loader.construct_scalar(node)
    if not node.style and _TEXT_TRAP.fullmatch(value):
        return Plain(value, value, node.start_mark.line + 1)
    return value


_Loader.add_constructor("tag:yaml.org,2002:str", _plain_text)
for _tag, _build in (("int", yaml.SafeLoader.construct_yaml_int),
                     ("float", yaml.SafeLoader.construct_yaml_float),
                     ("bool", yaml.SafeLoader.construct_yaml_bool)):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}",
                            lambda loader, node, build=_build: _plain(loader, node, build))


_SCALARS = yaml.constructor.SafeConstructor()
_BUILD = {
    "tag:yaml.org,2002:int": _SCALARS.construct_yaml_int,
    "tag:yaml.org,2002:float": _SCALARS.construct_yaml_float,
    "tag:yaml.org,2002:bool": _SCALARS.construct_yaml_bool,
}


def _key_identity(node: yaml.Node) -> Any:
    """What a mapping key becomes, so `1` and `01`, or `true` and `True`, count as one key as
    they would in the built map; text keys by their text."""
    if not isinstance(node, yaml.ScalarNode):
        return ("complex", id(node))  # a list or map as a key never equals another
    build = _BUILD.get(node.tag)
    if build is not None:
        try:
            return ("value", build(node))
        except (ValueError, yaml.YAMLError):
            pass
    return ("text", node.value)


_RESOLVER = yaml.resolver.Resolver()
_STR = "tag:yaml.org,2002:str"
_IMPLICIT_COLLECTION: dict[type[yaml.Node], str] = {
    yaml.MappingNode: "tag:yaml.org,2002:map",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
}


def _explicit_tag(node: yaml.Node) -> str | None:
    """The tag written on a node (``!!int "010"``, ``!!binary``, ``!secret``), or None when its
    tag is the one YAML would give it anyway. A tag changes what a reviewer sees (`!!int "010"`
    is 8, `!!binary` hides text) and Pulumi's own reader treats them differently, so only
    ``!!str`` is taken: it states what quoting states."""
    if isinstance(node, yaml.ScalarNode):
        if node.style:  # quoted or block: YAML makes it text unless a tag says otherwise
            implicit = _STR
        else:
            implicit = _RESOLVER.resolve(yaml.ScalarNode, node.value, (True, False))
        if node.tag == implicit:
            return None
        if node.tag == _STR:
            node.style = "'"  # text as written: no YAML 1.1 reading for _plain_text to flag
            return None
        return node.tag
    implicit_collection = _IMPLICIT_COLLECTION.get(type(node))
    return None if node.tag == implicit_collection else node.tag


def _check_graph(root: yaml.Node) -> None:
    """Walk the composed nodes once: aliases are shared nodes, so this is linear in the text
    while it computes how many values the document expands to."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise YamlProblem(path, "an alias refers to a value that contains it (write the value out)")
        if len(path) > MAX_DEPTH:
            raise YamlProblem(path, f"is nested too deeply to be a stack file (over {MAX_DEPTH} levels; "
                                    "flatten it)")
        open_nodes.add(key)
        tag = _explicit_tag(node)
        if tag is not None:
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise YamlProblem(path, f"line {node.start_mark.line + 1}: has the YAML tag {shown[:80]}, which a stack "
                                    "file does not use: it changes what the value reads as (remove the tag; "
                                    "quote text, write numbers and true/false plainly)")
        size = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, tuple[Any, int]] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    # `<<` written twice is a key written twice too (list the maps in one `<<`).
                    identity = ("merge",)
                    if identity in seen:
                        raise YamlProblem(path, f"the merge key '<<' is written twice, on lines {seen[identity][1]} "
                                                f"and {key_node.start_mark.line + 1} (merge several maps with one "
                                                "`<<: [*a, *b]`)")
                    seen[identity] = ("<<", key_node.start_mark.line + 1)
                    size += walk(value_node, path)
                    continue
                name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "<complex key>"
                identity = _key_identity(key_node)
                line = key_node.start_mark.line + 1
                if identity in seen:
                    first_name, first_line = seen[identity]
                    written = f"{name!r}" if first_name == name else f"{first_name!r} (as {name!r})"
                    raise YamlProblem(
                        (*path, first_name),
                        f"the key {written} is written twice, on lines {first_line} and {line}; YAML would "
                        "keep only the last (delete one of them)",
                    )
                seen[identity] = (name, line)
                size += walk(key_node, (*path, name)) + walk(value_node, (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                size += walk(item, (*path, index))
        open_nodes.discard(key)
        sizes[key] = size
        if size > MAX_VALUES:
            raise YamlProblem(path, f"expands to more than {MAX_VALUES} values (through aliases or sheer size), "
                                    "more than any stack file needs (write the values out, or split the file)")
        return size

    walk(root, ())


def read_yaml(text: str) -> Any:
    """Parse a stack file's text. Raises YamlProblem for the defects above and yaml.YAMLError
    for syntax errors."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlProblem((), f"is larger than {MAX_BYTES // 1024} KiB, far more than a stack file needs "
                              "(check that this is the right file)")
    # Lines and flow-list commas bound the number of values before any is parsed: parsing a
    # file of hundreds of thousands of values would itself take seconds.
    if text.count("\n") + text.count(",") > MAX_VALUES:
        raise YamlProblem((), f"has more than {MAX_VALUES} lines and list items, more than any stack file needs "
                              "(check that this is the right file, or split it)")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            _check_graph(node)
        except YamlProblem as exc:
            exc.endpoints = _endpoint_names(node)
            raise
        return loader.construct_document(node)
    finally:
        loader.dispose()


def resolve_plain(value: Any, *, bool_fields: Collection[str], text_fields: Collection[str],
                  path: tuple[Any, ...] = ()) -> tuple[Any, list[YamlProblem]]:
    """A copy of ``value`` with every ``Plain`` resolved by the field it sits in: its YAML value
    where a number or boolean belongs, its text as written in ``text_fields`` (versions), and a
    "quote it" refusal for a YAML 1.1 trap anywhere else."""
    problems: list[YamlProblem] = []

    def resolve(item: Any, here: tuple[Any, ...]) -> Any:
        if isinstance(item, Plain):
            field = here[-1] if here else None
            if isinstance(item.value, bool) and field in bool_fields:
                return item.value
            if item.trap:
                if isinstance(item.value, str):
                    reading = f"is read by Pulumi (YAML 1.2) as the number {yaml12_number(item.text)!r}"
                elif isinstance(item.value, bool):
                    reading = f"is read by YAML as {str(item.value).lower()}, not as the text {item.text}"
                else:
                    reading = f"is read by YAML 1.1 as the number {item.value!r}, not as the text {item.text}"
                problems.append(YamlProblem(here, f'line {item.line}: unquoted {item.text} {reading} '
                                                  f'(quote it: "{item.text}")'))
                return item.value
            if field in text_fields and not isinstance(item.value, bool):
                return item.text  # a version keeps its text: 3.10 is not 3.1
            return item.value
        if isinstance(item, dict):
            out: dict[Any, Any] = {}
            for key, child in item.items():
                name = resolve(key, here) if isinstance(key, Plain) else key
                out[name] = resolve(child, (*here, name))
            return out
        if isinstance(item, list):
            return [resolve(child, (*here, index)) for index, child in enumerate(item)]
        return item

    return resolve(value, path), problems
