"""feeds.yaml loading: YAML text -> a validated pydantic model, errors mapped to file:line.

Generic over the root model, so it never imports the models: `feeds_config` passes
`MonitorConfig` in, which keeps the import graph acyclic
(config_values <- config_loader <- feeds_config). ruamel.yaml's round-trip loader remembers
the line of every key and list item; `validate_yaml` turns each pydantic error into one line
such as ``feeds.yaml:42: feeds[7] (BBC Vietnamese).interval: "5x" is not a duration ...``.
`read_config_file` and `config_fingerprint` are the file-reading halves of `load_config` and of
reload change detection. Public names stay importable from `monitor.config.schema`.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.config.values import CUSTOM_ERROR_TYPES, LocatedError
from monitor.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


def config_fingerprint(path: Path) -> str:
    """A hash of the file's bytes, so a reload can skip an unchanged file cheaply."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def read_config_file(path: Path) -> str:
    """The file's text (UTF-8, BOM allowed); ConfigError naming the file if unreadable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8") from None


def validate_yaml(
    text: str, model: type[ModelT], context: Mapping[str, Any], source_name: str
) -> ModelT:
    """Parse text as YAML and validate it as model; ConfigError lists every error by line."""
    document = _parse_yaml(text, source_name)
    try:
        return model.model_validate(_to_plain(document), context=context)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, document, source_name, model)) from None


def _parse_yaml(text: str, source_name: str) -> CommentedMap:
    """Parse with line tracking; reject syntax errors, empty files and non-mappings."""
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{source_name}:{line}: YAML syntax error: {problem}") from None
    except YAMLError as exc:
        raise ConfigError(f"{source_name}: YAML error: {exc}") from None
    if document is None:
        raise ConfigError(f"{source_name}:1: the file is empty; expected feeds: and alerts:")
    if not isinstance(document, CommentedMap):
        raise ConfigError(f"{source_name}:1: the top level must be a mapping (feeds:, alerts:)")
    return document


def _to_plain(node: Any) -> Any:
    """Turn ruamel's round-trip containers and scalar subclasses into plain Python values."""
    if isinstance(node, CommentedMap):
        return {_to_plain(k): _to_plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for plain in (str, int, float):
        if isinstance(node, plain):
            return plain(node)
    return node


def _describe(
    exc: ValidationError, document: CommentedMap, source_name: str, root: type[BaseModel]
) -> str:
    """One line per pydantic error: FILE:LINE: path: message, sorted by line."""
    lines: dict[str, int] = {}
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        origin = (error.get("ctx") or {}).get("error")
        if isinstance(origin, LocatedError):
            loc += origin.loc
        line = _line_of(document, loc)
        where = _path_of(document, loc)
        text = f"{source_name}:{line}: {where}: {_message(error, loc, root)}"
        lines.setdefault(text, line)
    return "\n".join(sorted(lines, key=lambda t: lines[t]))


def _walk(document: Any, loc: tuple[Any, ...]) -> Iterator[tuple[Any, Any, int | None]]:
    """Follow loc into the document, yielding (part, node or None, line) for each part."""
    node = document
    for part in loc:
        child, line = None, None
        if isinstance(node, CommentedMap) and part in node:
            child, line = node[part], node.lc.key(part)[0] + 1
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            child, line = node[part], node.lc.item(part)[0] + 1
        yield part, child, line
        if line is not None:
            node = child


def _line_of(document: CommentedMap, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the deepest part of loc present in the document."""
    best: int = document.lc.line + 1
    for _, _, line in _walk(document, loc):
        if line is not None:
            best = int(line)
    return best


def _path_of(document: CommentedMap, loc: tuple[Any, ...]) -> str:
    """Spell loc as feeds[7] (BBC Vietnamese).interval, dropping pydantic's union tags."""
    out = ""
    steps = list(_walk(document, loc))
    for i, (part, child, line) in enumerate(steps):
        if line is None and i < len(steps) - 1:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
            name = child.get("name") if isinstance(child, CommentedMap) else None
            if isinstance(name, str):
                out += f" ({name})"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _message(error: Any, loc: tuple[Any, ...], root: type[BaseModel]) -> str:
    """A readable message for one pydantic error."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), _known_keys(root, loc[:-1]))
    if kind == "missing":
        return f'required key "{loc[-1]}" is missing'
    msg = str(error["msg"])
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if isinstance(error.get("ctx"), dict) and kind in CUSTOM_ERROR_TYPES:
        return msg
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{msg} (got {shown})"


def _unknown_key(key: str, known: list[str]) -> str:
    """Name an unknown key and suggest the closest known one."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f'unknown key "{key}" (did you mean "{close[0]}"?)'
    return f'unknown key "{key}" (known keys: {", ".join(known)})'


def _known_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model that sits at loc below root."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return []
        if isinstance(part, str) and part in model.model_fields:
            model = _model_in(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The config model inside an annotation such as tuple[FeedSpec, ...] or X | None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin in (tuple, list, Union, Annotated) or str(origin) == "<class 'types.UnionType'>":
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
