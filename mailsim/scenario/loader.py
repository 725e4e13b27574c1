"""Load a YAML scenario and say exactly where each mistake is.

The YAML is read with ruamel.yaml's round-trip composer, which keeps the line and column of every
key and value. We build plain Python data from the composed nodes ourselves, so that we also see
what a plain loader hides: a key given twice in one mapping (YAML 1.2 section 3.2.1.1 forbids
it), an unknown tag, a list used as a key. The data then goes through the pydantic models of
:mod:`mailsim.scenario.schema` and the reference checks, and every problem found on the way becomes
one line ``path:line:col: field.path: what is wrong; what is expected``.

Nothing a user writes makes this module raise anything but :class:`ScenarioError`.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from mailsim.scenario.errors import Problem, ScenarioError, closest, shown
from mailsim.scenario.overrides import Override, apply_overrides, relocate
from mailsim.scenario.schema import (
    Issue,
    Scenario,
    ScenarioParts,
    check_references,
    explain_shape,
)
from mailsim.scenario.schema.advice import check_advice
from mailsim.scenario.schema.issues import Loc, dotted

__all__ = [
    "SourceMap",
    "load_scenario",
    "parse_yaml",
    "place",
    "read_text",
    "revalidate",
    "validate_document",
    "validate_file",
    "validate_text",
]

_TAG = "tag:yaml.org,2002:"
#: Error types raised by the discriminators of schema unions (see schema.explain_shape).
_SHAPE_ERRORS = frozenset({"fault_shape", "attachment_shape", "record_shape", "size_shape"})
#: Hints for the YAML syntax errors students meet most, keyed by a piece of ruamel's text.
_SYNTAX_HINTS: tuple[tuple[str, str], ...] = (
    ("'\\t'", "indent with spaces, not tabs"),
    ("mapping values are not allowed", "quote a value that contains ': ', or fix the indentation"),
    ("while scanning a quoted scalar", "a quote is not closed"),
    ("expected ',' or ']'", "a [ list ] is not closed"),
    ("expected ',' or '}'", "a { mapping } is not closed"),
    ("another document", "a scenario is one YAML document; remove the second '---'"),
    ("undefined alias", "define the anchor (&name) before using it (*name)"),
    ("expected <block end>", "check the indentation: items of one list or mapping line up"),
    ("could not find expected ':'", "a key needs ': ' after it"),
)
#: The most values that aliases (``*name``) and merges (``<<: *name``) may build in one file. Each
#: alias copies its anchor's value, so nested aliases multiply: nine lists of nine aliases of
#: nine ... ("billion laughs") build 9**n values from a few lines. A scenario's anchors share a
#: link's defaults or a list of users, a few thousand values at most.
MAX_ALIAS_VALUES = 100_000


# --------------------------------------------------------------------------------------------
# YAML to data, remembering where everything was
# --------------------------------------------------------------------------------------------


@dataclass
class SourceMap:
    """Where each key and value of the loaded data was written (1-based line and column).

    Paths are tuples of keys and list indices from the top, as in ``("links", 0, "latency")``.
    """

    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def locate(self, loc: Iterator[Any] | tuple[Any, ...], data: Any) -> tuple[Loc, bool]:
        """The longest prefix of ``loc`` that exists in ``data``, and whether ``loc`` ended at a
        dictionary key (pydantic's ``'[key]'``).

        Elements that are not in the data are skipped: they are union tags, or parts of a value
        a validator rewrote (a scalar size turned into a mapping), or a key that is missing.
        """
        consumed: list[str | int] = []
        current = data
        for part in loc:
            if part == "[key]":
                return tuple(consumed), True
            in_mapping = isinstance(current, dict) and _hashable(part) and part in current
            in_list = (
                isinstance(current, list)
                and isinstance(part, int)
                and not isinstance(part, bool)
                and 0 <= part < len(current)
            )
            if in_mapping or in_list:
                consumed.append(part)
                current = current[part]
        return tuple(consumed), False

    def position(self, loc: Loc, *, at_key: bool = False) -> tuple[int, int]:
        """The line and column of the value at ``loc`` (or of its key), else of the nearest
        enclosing value that has one."""
        if at_key and loc in self.keys:
            return self.keys[loc]
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.values:
                return self.values[loc[:end]]
        return (1, 1)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _mark(node: Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _tag(node: Node) -> str:
    tag = node.tag
    return str(getattr(tag, "value", tag))


class _TooManyAliasValues(Exception):
    """Raised inside :class:`_Builder` when aliases build more than :data:`MAX_ALIAS_VALUES`."""

    def __init__(self, loc: Loc, where: tuple[int, int]) -> None:
        super().__init__(loc)
        self.loc = loc
        self.where = where


class _Builder:
    """Turns composed YAML nodes into dicts, lists and scalars, filling a :class:`SourceMap`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.source = SourceMap()
        self.problems: list[Problem] = []
        self._active: set[int] = set()
        #: Nodes built once already: building one again is an alias (the composer gives an
        #: alias the very node of its anchor).
        self._built: set[int] = set()
        #: Values built through aliases and merges so far, against MAX_ALIAS_VALUES.
        self._copied = 0
        #: Where the outermost alias being built is used, while one is.
        self._alias_at: Loc | None = None

    def problem(self, where: tuple[int, int], loc: Loc, message: str) -> None:
        self.problems.append(Problem(self.path, where[0], where[1], dotted(loc), message))

    def count_copy(self, loc: Loc) -> None:
        """Count one value that an alias or a merge copies; stop at :data:`MAX_ALIAS_VALUES`."""
        self._copied += 1
        if self._copied > MAX_ALIAS_VALUES:
            if self._alias_at is None:  # a merge into the mapping at loc
                raise _TooManyAliasValues(loc, self.source.position(loc))
            # The alias's own node is its anchor's: place it at the value that holds it.
            where = self.source.position(self._alias_at[:-1])
            raise _TooManyAliasValues(self._alias_at, where)

    def build(self, node: Node, loc: Loc) -> Any:
        if id(node) in self._built and self._alias_at is None:
            self._alias_at = loc
            try:
                return self.build_node(node, loc)
            finally:
                self._alias_at = None
        self._built.add(id(node))
        return self.build_node(node, loc)

    def build_node(self, node: Node, loc: Loc) -> Any:
        if self._alias_at is not None:
            self.count_copy(loc)
        self.source.values[loc] = _mark(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node, loc)
        if id(node) in self._active:
            self.problem(_mark(node), loc, "an alias refers to a value that contains it")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*loc, index)) for index, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self.mapping(node, loc)
            return None  # pragma: no cover - ruamel knows no other node kinds
        finally:
            self._active.discard(id(node))

    def mapping(self, node: MappingNode, loc: Loc) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node, written in self.pairs(node, loc):
            if not isinstance(key_node, ScalarNode):
                got = "a list" if isinstance(key_node, SequenceNode) else "a mapping"
                self.problem(_mark(key_node), loc, f"a key must be a single word, got {got}")
                continue
            # Keys are names, so they stay the text written: `1:` is the node called '1', and
            # `true:` and `1:` are two different keys, as a reader sees them.
            key = key_node.value
            if key_node.style is None and not _tag(key_node).startswith(_TAG):
                self.scalar(key_node, loc)  # reports an unknown tag
            if key in result:
                if written and key in first_line:
                    self.problem(
                        _mark(key_node),
                        (*loc, key),
                        f"duplicate key; '{key}' was already given on line {first_line[key]}, "
                        "and a mapping gives each key once",
                    )
                continue
            if written:
                first_line[key] = _mark(key_node)[0]
            self.source.keys[(*loc, key)] = _mark(key_node)
            result[key] = self.build(value_node, (*loc, key))
        return result

    def pairs(self, node: MappingNode, loc: Loc) -> Iterator[tuple[Node, Node, bool]]:
        """The key/value pairs of a mapping: those written in it, then those merged in with
        ``<<: *anchor`` (written keys win over merged ones, as YAML's merge key says)."""
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if _tag(key_node) == _TAG + "merge":
                merges.append(value_node)
            else:
                yield key_node, value_node, True
        for merged in merges:
            sources = merged.value if isinstance(merged, SequenceNode) else [merged]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.problem(
                        _mark(source), loc, "'<<' merges mappings only (like <<: *defaults)"
                    )
                    continue
                if id(source) in self._active:
                    self.problem(_mark(source), loc, "an alias refers to a value that contains it")
                    continue
                self._active.add(id(source))
                try:
                    for key_node, value_node, _ in self.pairs(source, loc):
                        self.count_copy(loc)
                        yield key_node, value_node, False
                finally:
                    self._active.discard(id(source))

    def scalar(self, node: ScalarNode, loc: Loc) -> Any:
        value: str = node.value
        tag = _tag(node)
        if node.style == ">":
            value = value.replace("\a", "")  # ruamel marks folds with BEL in round-trip mode
        if node.style is not None or tag == _TAG + "str":
            return value
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return value.lower() == "true"
        if tag == _TAG + "int":
            return _yaml_int(value)
        if tag == _TAG + "float":
            return _yaml_float(value)
        if not tag.startswith(_TAG):
            self.problem(
                _mark(node), loc, f"unknown YAML tag '{tag}'; scenarios use plain YAML values"
            )
        return value


def _yaml_int(text: str) -> int | str:
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    body = digits.lstrip("+-")
    try:
        if body[:2].lower() in {"0x", "0o", "0b"}:
            return sign * int(body, 0)
        return sign * int(body, 10)
    except ValueError:
        return text


def _yaml_float(text: str) -> float | str:
    special = {".inf": float("inf"), ".nan": float("nan")}
    body = text.lower().lstrip("+-")
    try:
        number = special[body] if body in special else float(body.replace("_", ""))
    except ValueError:
        return text
    return -number if text.startswith("-") else number


_EMPTY = object()
_FAILED = object()


def parse_yaml(text: str, path: str) -> tuple[Any, SourceMap, list[Problem]]:
    """Compose ``text`` and build plain data with positions.

    Args:
        text: the YAML.
        path: the name used in problems.

    Returns:
        ``(data, source_map, problems)``. ``data`` is a sentinel when the text could not be
        parsed (``problems`` says why) or holds no document at all.
    """
    try:
        node = YAML(typ="rt").compose(text)
    except RecursionError:
        message = "the YAML is nested too deeply to be a scenario"
        return _FAILED, SourceMap(), [Problem(path, 1, 1, "", message)]
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = error.problem or error.context or "cannot be read"
        message = f"YAML syntax error: {problem}"
        full = f"{error.problem} {error.context}"
        hint = next((hint for needle, hint in _SYNTAX_HINTS if needle in full), None)
        message += f"; {hint}" if hint else "; check the indentation and quotes near here"
        return _FAILED, SourceMap(), [Problem(path, line, col, "", message)]
    except ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        col = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        character = error.character
        code = ord(character) if isinstance(character, str) else int(character)
        message = f"the control character U+{code:04X} is not allowed in YAML; remove it"
        return _FAILED, SourceMap(), [Problem(path, line, col, "", message)]
    except YAMLError as error:  # pragma: no cover - every ruamel error we know is handled above
        return _FAILED, SourceMap(), [Problem(path, 1, 1, "", f"YAML cannot be read: {error}")]
    if node is None:
        return _EMPTY, SourceMap(), []
    builder = _Builder(path)
    try:
        data = builder.build(node, ())
    except RecursionError:
        message = "the YAML is nested too deeply to be a scenario"
        return _FAILED, SourceMap(), [Problem(path, 1, 1, "", message)]
    except _TooManyAliasValues as error:
        line, col = error.where
        message = (
            f"aliases here build more than {MAX_ALIAS_VALUES:,} values (each alias copies its "
            "anchor, so nested aliases multiply, as in the 'billion laughs' attack); "
            "write the values out, or use fewer aliases of aliases"
        )
        return _FAILED, SourceMap(), [Problem(path, line, col, dotted(error.loc), message)]
    return data, builder.source, builder.problems


# --------------------------------------------------------------------------------------------
# pydantic errors to problems
# --------------------------------------------------------------------------------------------


def _unwrap(kind: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None``."""
    while True:
        if get_origin(kind) is typing.Annotated:
            kind = get_args(kind)[0]
            continue
        if get_origin(kind) in (Union, types.UnionType):
            members = [m for m in get_args(kind) if m is not type(None)]
            if len(members) == 1:
                kind = members[0]
                continue
        return kind


def _field_of(model: type[BaseModel], key: Any) -> Any:
    for name, info in model.model_fields.items():
        if key in (info.alias, name) and (info.alias is None or key == info.alias):
            return info
    return None


def _model_at(loc: Loc, root: type[BaseModel] = Scenario) -> type[BaseModel] | None:
    """The model that validates the mapping at pydantic error location ``loc`` below ``root``."""
    kind: Any = root
    for part in loc:
        kind = _unwrap(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            info = _field_of(kind, part)
            if info is None:
                return None
            kind = info.annotation
            continue
        origin = get_origin(kind)
        args = get_args(kind)
        if origin in (list, tuple) and isinstance(part, int):
            kind = args[0]
        elif origin is dict:
            kind = args[1]
        elif origin in (Union, types.UnionType):
            chosen = [m for m in map(_unwrap, args) if getattr(m, "__name__", None) == part]
            if not chosen:
                return None
            kind = chosen[0]
        else:
            return None
    kind = _unwrap(kind)
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


@dataclass
class _Placer:
    """Turns errors and issues into problems placed in the file."""

    path: str
    data: Any
    source: SourceMap
    problems: list[Problem] = field(default_factory=list)
    #: The model of the whole document (a scenario, or a study file).
    root: type[BaseModel] = Scenario

    def add(
        self, loc: Loc, message: str, *, at_key: bool = False, shown_loc: Loc | None = None
    ) -> None:
        consumed, key_error = self.source.locate(loc, self.data)
        line, col = self.source.position(consumed, at_key=at_key or key_error)
        where = shown_loc if shown_loc is not None else consumed
        self.problems.append(Problem(self.path, line, col, dotted(where), message))

    def issue(self, issue: Issue, base: Loc = ()) -> None:
        self.add(
            (*base, *issue.loc), issue.message, at_key=issue.at_key, shown_loc=(*base, *issue.loc)
        )

    def errors(self, errors: list[ErrorDetails]) -> None:
        # A misspelt key is reported once: as unknown, with its suggestion; the required field it
        # was meant to be is then not also reported missing.
        suggested: set[tuple[Loc, str]] = set()
        for error in errors:
            if error["type"] == "extra_forbidden":
                model = _model_at(error["loc"][:-1], self.root)
                match = closest(error["loc"][-1], _keys_of(model)) if model else None
                if match is not None:
                    suggested.add((error["loc"][:-1], match))
        for error in errors:
            loc = tuple(error["loc"])
            if error["type"] == "missing" and (loc[:-1], loc[-1]) in suggested:
                continue
            self.error(error, loc)

    def error(self, error: ErrorDetails, loc: Loc) -> None:
        kind = error["type"]
        ctx = error.get("ctx") or {}
        value = error.get("input")
        if kind in _SHAPE_ERRORS:
            consumed, _ = self.source.locate(loc, self.data)
            for issue in explain_shape(kind, value):
                self.issue(issue, consumed)
            return
        if kind == "missing":
            model = _model_at(loc[:-1], self.root)
            info = _field_of(model, loc[-1]) if model else None
            expected = info.description if info is not None and info.description else "a value"
            consumed, _ = self.source.locate(loc, self.data)
            self.add(loc, f"missing; expected {expected}", shown_loc=(*consumed, loc[-1]))
            return
        if kind == "extra_forbidden":
            model = _model_at(loc[:-1], self.root)
            keys = _keys_of(model) if model else []
            match = closest(loc[-1], keys)
            if match is not None:
                message = f"unknown key; did you mean '{match}'?"
            elif isinstance(loc[-1], str) and " " in loc[-1].strip() and value is None:
                # {text: Greylisted, try later} reads as text: Greylisted and a key 'try later'.
                message = (
                    f"unknown key; if '{loc[-1]}' is part of a text, put the whole text in "
                    "quotes (inside { } a comma ends a value)"
                )
            elif keys:
                message = f"unknown key; expected one of {', '.join(keys)}"
            else:
                message = "unknown key"
            self.add(loc, message, at_key=True)
            return
        self.add(loc, _message(kind, ctx, value, error["msg"]))


def _message(kind: str, ctx: dict[str, Any], value: Any, fallback: str) -> str:
    """A sentence for one pydantic error type."""
    if kind == "mailsim":
        return str(ctx["message"])
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"must be a mapping of keys and values (like {{key: value}}), got {shown(value)}"
    if kind in {"list_type", "tuple_type"}:
        return f"must be a list (items on lines starting with '- ', or [a, b]), got {shown(value)}"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return "must not be empty" if least == 1 else f"needs at least {least} items"
    if kind == "string_type":
        return f"must be text, got {shown(value)}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the listed values')}, got {shown(value)}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return fallback[:1].lower() + fallback[1:]


# --------------------------------------------------------------------------------------------
# The public functions
# --------------------------------------------------------------------------------------------


def validate_document(
    model: type[BaseModel], data: Any, source: SourceMap, path: str, problems: list[Problem]
) -> tuple[BaseModel | None, list[Problem]]:
    """Validate YAML ``data`` read by :func:`parse_yaml` against another document's ``model``
    (a study file), each pydantic error placed in the file as for a scenario.

    Returns:
        ``(model instance or None, problems)``, ``problems`` starting with those given.
    """
    placer = _Placer(path, data, source, list(problems), root=model)
    try:
        instance = model.model_validate(data)
    except ValidationError as error:
        placer.errors(error.errors())
        return None, placer.problems
    return instance, placer.problems


def place(problems: list[Problem], path: str, data: Any, source: SourceMap) -> _Placer:
    """A placer for problems found by hand in a document read by :func:`parse_yaml`:
    ``place(...).add(loc, message)`` appends one at the value (or key) of ``loc``."""
    return _Placer(path, data, source, problems)


def read_text(path: Path, name: str) -> str:
    """The text of a UTF-8 file, or a :class:`ScenarioError` saying why it cannot be read."""
    return _read(path, name)


def _looks_like_path(source: str | os.PathLike[str]) -> bool:
    if isinstance(source, os.PathLike):
        return True
    if "\n" in source:
        return False
    return source.endswith((".yaml", ".yml")) or os.path.isfile(source)


def _read(path: Path, name: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ScenarioError(
            [Problem(name, 0, 0, "", f"cannot read the file: {error.strerror or error}")]
        ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        col = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        message = "the file is not UTF-8 text; save it as UTF-8"
        raise ScenarioError([Problem(name, line, col, "", message)]) from None


def load_scenario(
    source: str | os.PathLike[str],
    *,
    source_name: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    overrides: Sequence[Override] = (),
) -> Scenario:
    """Load and validate a scenario from a file or from YAML text.

    Args:
        source: a path (a :class:`os.PathLike`, or a one-line string ending in ``.yaml``/``.yml``
            or naming an existing file), or else the YAML text itself.
        source_name: the name shown in problems; default: the path as given, or ``<scenario>``.
        base_dir: where relative attachment paths start; default: the file's folder, or the
            current directory for text.
        overrides: fields to change before validation (``mailsim run --set``); a problem with an
            overridden value is placed where its override was given.

    Returns:
        The validated scenario, every value in SI base units.

    Raises:
        ScenarioError: with every problem of the scenario, in file order.
    """
    if _looks_like_path(source):
        path = Path(source)
        name = source_name if source_name is not None else os.fspath(source)
        text = _read(path, name)
        base = Path(base_dir) if base_dir is not None else path.parent
        scenario = _load_text(text, name, base, overrides)
        scenario._source_stem = path.stem  # runs/<file stem>/, see Scenario.slug
        return scenario
    text = str(source)
    name = source_name if source_name is not None else "<scenario>"
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    return _load_text(text, name, base, overrides)


def revalidate(
    scenario: Scenario,
    overrides: Sequence[Override] = (),
    *,
    base_dir: str | os.PathLike[str] | None = None,
) -> Scenario:
    """A validated copy of a scenario model with ``overrides`` applied (a study of a model built
    or edited in Python). Only the fields that were set are carried over, so a check that
    depends on what was written (a fixed-policy field under another policy) sees the same.

    Raises:
        ScenarioError: the problems of the changed scenario, overridden ones placed at their
            override, the rest at ``<scenario>``.
    """
    data = scenario.model_dump(by_alias=True, exclude_unset=True)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    try:
        return _validate(data, SourceMap(), [], "<scenario>", base, overrides)
    except ScenarioError as error:
        # A model has no lines and columns: its own problems are named by field only.
        raise ScenarioError(
            Problem(p.path, 0, 0, p.field, p.message) if p.path == "<scenario>" else p
            for p in error.problems
        ) from None


def _load_text(text: str, name: str, base: Path, overrides: Sequence[Override] = ()) -> Scenario:
    data, source, problems = parse_yaml(text, name)
    if data is _FAILED:
        raise ScenarioError(problems)
    if data is _EMPTY:
        message = "the file is empty; a scenario is a mapping with at least name and nodes"
        raise ScenarioError([Problem(name, 1, 1, "", message)])
    if not isinstance(data, dict):
        line, col = source.position(())
        message = (
            "the top level must be a mapping of sections (name:, nodes:, links:, ...), "
            f"got {shown(data)}"
        )
        raise ScenarioError([*problems, Problem(name, line, col, "", message)])
    if {"scenario", "parameters"} <= data.keys() and "nodes" not in data:
        # A study file (mailsim.study) names a scenario and varies it; it is not one itself.
        line, col = source.position(("scenario",))
        message = (
            "this is a study file (scenario: and parameters:), not a scenario; "
            f"run it with: mailsim sweep {name}"
        )
        raise ScenarioError([*problems, Problem(name, line, col, "scenario", message)])
    return _validate(data, source, problems, name, base, overrides)


def _validate(
    data: dict[str, Any],
    source: SourceMap,
    problems: list[Problem],
    name: str,
    base: Path,
    overrides: Sequence[Override],
) -> Scenario:
    """Validate scenario data (after ``overrides``); every problem placed in its file."""
    original = data
    if overrides:
        data, misplaced = apply_overrides(data, overrides)
        if misplaced:
            raise ScenarioError([*problems, *misplaced])
    context = {"base_dir": base, "skip_reference_checks": True}
    placer = _Placer(name, data, source, problems)
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate(data, context=context)
        parts = ScenarioParts.of(scenario)
    except ValidationError as error:
        placer.errors(error.errors())
        parts = ScenarioParts.salvage(data, context)
    for issue in check_references(parts):
        placer.issue(issue)
    if placer.problems or scenario is None:
        placed = relocate(placer.problems, overrides, original) if overrides else placer.problems
        raise ScenarioError(_in_file_order(placed))
    advice = _Placer(name, data, source)
    for issue in check_advice(scenario, data):
        advice.issue(issue)
    warned = relocate(advice.problems, overrides, original) if overrides else advice.problems
    scenario._warnings = _in_file_order(warned)
    return scenario


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.col, p.field, p.message))


def validate_text(
    text: str,
    *,
    source_name: str = "<scenario>",
    base_dir: str | os.PathLike[str] | None = None,
    strict: bool = False,
) -> list[str]:
    """The problems of a scenario given as YAML text, one printable line each (empty: valid).

    With ``strict``, its warnings (see :attr:`Scenario.warnings`) count as problems too.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    try:
        scenario = _load_text(text, source_name, base)
    except ScenarioError as error:
        return error.lines
    return [str(warning) for warning in scenario.warnings] if strict else []


def validate_file(
    path: str | os.PathLike[str], *, source_name: str | None = None, strict: bool = False
) -> list[str]:
    """The problems of a scenario file, one printable line each; an empty list means valid.

    This is what ``mailsim validate`` prints (and exits 2 if the list is not empty).

    Args:
        path: the scenario file.
        source_name: the name shown in the lines; default: ``path`` as given.
        strict: count the scenario's warnings as problems (``mailsim validate --strict``).
    """
    try:
        scenario = load_scenario(
            Path(path), source_name=source_name if source_name is not None else os.fspath(path)
        )
    except ScenarioError as error:
        return error.lines
    return [str(warning) for warning in scenario.warnings] if strict else []
