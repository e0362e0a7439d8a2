"""Reading DSPy's prompts back: the one parser the offline engine, the instruction writer and the server
share (``docs/design.md`` §6.2).

A DSPy adapter writes a system message that lists the input and output fields (``1. `hours` (float)``)
and says how to answer (ChatAdapter's ``[[ ## name ## ]]`` sections, JSONAdapter's object, or XML
tags); the last user message holds the inputs as sections, earlier user/assistant pairs are
demonstrations. Everything here is text in, values out: no DSPy import, so a test can feed it a
hand-written prompt.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["Fields", "parse_system", "parse_value", "sections", "assistant_fields", "format_fields",
           "split_messages", "request_texts", "openai_content_text"]

#: ``(name, type)`` of each field, in the order the system message lists them.
Fields = tuple[tuple[str, str], ...]

_SECTION = re.compile(r"^\[\[ ## (\w+) ## \]\][ \t]*$", re.M)
_FIELD_LIST = re.compile(r"Your (input|output) fields are:\n(.*?)(?=\nYour output fields are:|\nAll interactions|\Z)", re.S)
_FIELD_LINE = re.compile(r"^\d+\. `(\w+)` \(([^\n]*?)\)(?::|$)", re.M)
_TRAILER = re.compile(r"\n\n(?:Respond with |Respond only with )", re.S)
_XML_FIELD = re.compile(r"<(\w+)>\n?(.*?)\n?</\1>", re.S)
_DECODER = json.JSONDecoder()


@functools.lru_cache(maxsize=256)
def parse_system(system: str) -> tuple[Fields, Fields, str]:
    """Input fields, output fields and the answer format (``chat``, ``json`` or ``xml``) of a system message."""
    inputs: Fields = ()
    outputs: Fields = ()
    for kind, block in _FIELD_LIST.findall(system):
        fields = tuple(_FIELD_LINE.findall(block))
        if kind == "input":
            inputs = fields
        else:
            outputs = fields
    if "Outputs will be a JSON object" in system:
        fmt = "json"
    elif outputs and "[[ ## " not in system and f"<{outputs[0][0]}>" in system:
        fmt = "xml"
    else:
        fmt = "chat"
    return inputs, outputs, fmt


def parse_value(text: str) -> Any:
    """A field's value: JSON when it parses (pydantic models, lists, numbers), else the stripped text."""
    t = text.strip()
    if not t:
        return ""
    if t[0] in "[{\"-0123456789tfn":
        try:
            # The first JSON value; text after it (a reminder DSPy appends, say) is ignored.
            value, end = _DECODER.raw_decode(t)
            if end == len(t) or t[0] in "[{":
                return value
        except ValueError:
            pass
    if t == "None":
        return None
    return t


def sections(text: str, *, parse: bool = True) -> dict[str, Any]:
    """The ``[[ ## name ## ]]`` sections (or ``<name>`` tags) of a message.

    With ``parse`` the values go through ``parse_value``; without, they are the stripped text. The
    adapter's closing "Respond with ..." reminder is cut from the last section.
    """
    convert = parse_value if parse else str.strip
    heads = list(_SECTION.finditer(text))
    if not heads:
        return {m.group(1): convert(m.group(2)) for m in _XML_FIELD.finditer(text)}
    out: dict[str, Any] = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[m.end() : end]
        if i + 1 == len(heads):
            cut = _TRAILER.search(body)
            if cut:
                body = body[: cut.start()]
        out[m.group(1)] = convert(body)
    return out


def assistant_fields(text: str) -> dict[str, Any]:
    """The fields of an assistant turn (a demonstration's answer): a JSON object or sections."""
    t = text.strip()
    if t.startswith("{"):
        try:
            d = json.loads(t)
            return d if isinstance(d, dict) else {}
        except ValueError:
            return {}
    return sections(t)


def format_fields(outputs: Sequence[tuple[str, str]], values: dict[str, Any], fmt: str) -> str:
    """Render output values as the adapter expects them (``chat``, ``json`` or ``xml``)."""
    if fmt == "json":
        return json.dumps({name: values[name] for name, _ in outputs}, ensure_ascii=False, indent=2)
    parts = []
    for name, _ in outputs:
        v = values[name]
        s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        parts.append(f"<{name}>\n{s}\n</{name}>" if fmt == "xml" else f"[[ ## {name} ## ]]\n{s}")
    if fmt == "chat":
        parts.append("[[ ## completed ## ]]")
    return "\n\n".join(parts)


def split_messages(messages: Iterable[tuple[str, str]], system: str = "") -> tuple[str, list[tuple[str, str]]]:
    """The system text and the chat: leading system/developer turns join ``system``, the rest is the chat."""
    system_parts = [system] if system else []
    chat: list[tuple[str, str]] = []
    for role, text in messages:
        if role in ("system", "developer") and not chat:
            system_parts.append(text)
        else:
            chat.append((role, text))
    return "\n\n".join(system_parts), chat


def request_texts(request: Any) -> tuple[str, list[tuple[str, str]]]:
    """System text and (role, text) chat of a ``dspy.lm15.Request``, as the prompt reads."""
    system = request.system
    if system is not None and not isinstance(system, str):
        system = "".join(getattr(p, "text", "") for p in system)
    turns = []
    for m in request.messages:
        text = m.text
        if text is None:
            text = "\n".join(t for t in (getattr(p, "text", None) for p in m.parts) if isinstance(t, str))
        turns.append((m.role, text))
    return split_messages(turns, system or "")


def openai_content_text(content: Any) -> str:
    """The text of an OpenAI chat message's ``content`` (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return str(content)
