#!/usr/bin/env python3
"""Checks the AsyncAPI documents Courier generates: valid AsyncAPI, and the same application as FastStream's.

Usage:
  asyncapi-check.py validate [--schemas DIR] DOC.json [DOC.json ...]
  asyncapi-check.py compare [--names] [--strict] DOC.json REFERENCE.json
  asyncapi-check.py all [--schemas DIR] [--references DIR] --documents DIR [--names] [--strict]

validate  Checks a document against the official AsyncAPI JSON Schema of its `asyncapi` version (3.0.0 or
          2.6.0, draft-07, read from DIR: asyncapi-<version>.json, fully offline), then the rules that schema
          cannot express: every local "$ref" resolves (JSON pointer; ~0, ~1 and %-escapes decoded); in 3.0 an
          operation's `channel` references #/channels/<key>, each of its `messages` references a message of that
          same channel, and a channel's `servers` reference #/servers/...; in 2.6 operationIds and messageIds are
          unique.
compare   Checks that DOC describes the same application as REFERENCE (FastStream's document). Operations are
          matched by (action, channel address); 2.6's `publish` is a receive, its `subscribe` a send. Per pair: the
          channel binding's identifying fields and every message's payload schema (refs resolved, annotations
          dropped). REFERENCE is the yardstick: a `{}` payload there accepts anything, a `format` is checked only
          where it gives one, pydantic's Decimal (anyOf number|string) accepts a number or a string, its `format:
          binary` accepts `contentEncoding: base64`. Nullability differences are notes unless --strict.
          --names also requires FastStream's names: channel keys, operation keys, the channels' message keys,
          components/messages keys and message titles.
all       For every faststream-<form>-<variant>-<version>.json in --references, validates
          courier-<form>-<variant>-<version>.json from --documents and compares it with the reference; one line
          per pair: "ok NAME", "INVALID NAME", "DIFFERS NAME", "INVALID AND DIFFERS NAME" (details indented
          below) or "MISSING NAME".

Exit status: 0 all good; 1 a document is invalid, differs or is missing; 2 usage error or the check cannot run
(a schema file or the `jsonschema` package, >= 4.18, is missing). Notes never change the exit status.
Defaults: --schemas Tests/Fixtures/AsyncAPI/schemas, --references Tests/Fixtures/AsyncAPI/faststream.
"""
import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMAS = REPOSITORY / "Tests" / "Fixtures" / "AsyncAPI" / "schemas"
DEFAULT_REFERENCES = REPOSITORY / "Tests" / "Fixtures" / "AsyncAPI" / "faststream"
SCHEMA_FILES = {"3.0.0": "asyncapi-3.0.0.json", "2.6.0": "asyncapi-2.6.0.json"}
REFERENCE_PREFIX, DOCUMENT_PREFIX = "faststream-", "courier-"

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_RUN = 0, 1, 2

# Schema keywords that describe a value without constraining it: ignored when comparing payloads.
ANNOTATIONS = frozenset({"title", "description", "default", "examples", "example", "$comment",
                         "readOnly", "writeOnly", "deprecated"})
# Keywords that make a schema without `type` more than "anything".
STRUCTURAL_KEYWORDS = ("properties", "items", "enum", "const")
MESSAGE_LIMIT = 300
# What reading a malformed document raises (UnresolvedReference is a LookupError): reported, not a crash.
MALFORMED = (LookupError, TypeError, AttributeError)
ABSENT = object()  # what a JSON pointer token names when there is nothing there


class CannotRun(Exception):
    """The check itself cannot run (missing schema, missing package, unreadable reference): exit 2."""


class UnresolvedReference(LookupError):
    """A "$ref" that names nothing in the document, or is not a local JSON pointer."""


# --------------------------------------------------------------------------------------------------------------
# JSON documents and references


def read_json(path):
    """The JSON value in the file at `path`; raises OSError or ValueError."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def pointer_tokens(ref):
    """The decoded tokens of a local reference: "#/a/b~1c%20d" -> ["a", "b/c d"]; "#" -> []."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise UnresolvedReference(f"{ref!r} is not a local reference (#/...)")
    fragment = ref[1:]
    if not fragment:
        return []
    if not fragment.startswith("/"):
        raise UnresolvedReference(f"{ref!r} is not a JSON pointer")
    return [unquote(raw).replace("~1", "/").replace("~0", "~") for raw in fragment[1:].split("/")]


def child_of(node, token):
    """The member `token` of an object, or the element at index `token` of an array, else ABSENT."""
    if isinstance(node, dict):
        return node.get(token, ABSENT)
    if isinstance(node, list) and token.isdigit() and (token == "0" or not token.startswith("0")):
        index = int(token)
        return node[index] if index < len(node) else ABSENT
    return ABSENT


def resolve_reference(document, ref):
    """The value that the local reference `ref` points at in `document`."""
    node = document
    for token in pointer_tokens(ref):
        node = child_of(node, token)
        if node is ABSENT:
            raise UnresolvedReference(f"{ref!r}: nothing at {token!r}")
    return node


def follow_references(document, node):
    """`node`, or what its chain of "$ref"s ends at when it is a reference object."""
    visited = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in visited:
            raise UnresolvedReference(f"{ref!r} refers to itself")
        visited.add(ref)
        node = resolve_reference(document, ref)
    return node


def last_token(ref):
    """The last decoded token of a local reference ("#/components/messages/a~1b" -> "a/b"), or None."""
    try:
        tokens = pointer_tokens(ref)
    except UnresolvedReference:
        return None
    return tokens[-1] if tokens else None


def iter_references(node, path=()):
    """Every ("$ref" location, reference string) pair in a JSON value, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from iter_references(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from iter_references(value, path + (index,))


def describe_location(path):
    """A JSON pointer for a path of keys and indices, for messages."""
    if not path:
        return "(document root)"
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in path)


def shorten(text, limit=MESSAGE_LIMIT):
    """`text` cut to `limit` characters: jsonschema's messages can quote a whole document."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --------------------------------------------------------------------------------------------------------------
# Validation: the official JSON Schema


def import_jsonschema():
    """The `jsonschema` and `referencing` modules, or CannotRun with the way to install them."""
    try:
        import jsonschema
        import referencing
        import referencing.jsonschema
    except ImportError as error:
        raise CannotRun(f"needs the jsonschema package (>= 4.18): pip install 'jsonschema>=4.18' ({error})")
    return jsonschema, referencing


def refuse_to_download(uri):
    """The registry's retriever: the check stays offline, so a reference outside the bundled schema fails."""
    from referencing.exceptions import NoSuchResource
    raise NoSuchResource(ref=uri)


def offline_registry(schema):
    """A registry holding the bundled schema and each sub-schema embedded under its own "$id"."""
    _, referencing = import_jsonschema()
    draft7 = referencing.jsonschema.DRAFT7
    resources = [(schema["$id"], draft7.create_resource(schema))] if "$id" in schema else []
    for definition in (schema.get("definitions") or {}).values():
        if isinstance(definition, dict) and isinstance(definition.get("$id"), str):
            resources.append((definition["$id"], draft7.create_resource(definition)))
    return referencing.Registry(retrieve=refuse_to_download).with_resources(resources).crawl()


def load_validator(schemas_dir, version):
    """A draft-07 validator for AsyncAPI `version`, built from asyncapi-<version>.json in `schemas_dir`."""
    jsonschema, _ = import_jsonschema()
    path = Path(schemas_dir) / SCHEMA_FILES[version]
    try:
        schema = read_json(path)
    except (OSError, ValueError) as error:
        raise CannotRun(f"cannot read the AsyncAPI {version} schema {path}: {error}")
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, registry=offline_registry(schema))


class Validators:
    """One validator per AsyncAPI version, built on first use."""

    def __init__(self, schemas_dir):
        self.schemas_dir = schemas_dir
        self._by_version = {}

    def for_version(self, version):
        if version not in self._by_version:
            self._by_version[version] = load_validator(self.schemas_dir, version)
        return self._by_version[version]


def leaf_errors(error):
    """The innermost errors under a failed oneOf/anyOf: the official schemas are oneOfs almost everywhere, so the
    top error says little more than 'is not valid under any of the given schemas'."""
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in leaf_errors(sub)]


def explain_schema_error(error, relevance):
    """One problem for a schema error: its message, then the likeliest reasons (the deepest leaves first)."""
    lines = [f"schema: at {describe_location(error.absolute_path)}: {shorten(error.message)}"]
    leaves = sorted(leaf_errors(error), key=lambda leaf: (-len(leaf.absolute_path), relevance(leaf)))
    for leaf in leaves[:6]:
        line = f"    because at {describe_location(leaf.absolute_path)}: {shorten(leaf.message, 200)}"
        if leaf is not error and line not in lines:
            lines.append(line)
    return "\n".join(lines)


def schema_problems(validator, document):
    """The document's violations of the official JSON Schema, most relevant first."""
    from jsonschema.exceptions import relevance
    from referencing.exceptions import Unresolvable
    try:
        errors = sorted(validator.iter_errors(document), key=relevance)
    except Unresolvable as error:
        return [f"schema: validation could not complete offline: {error}"]
    return [explain_schema_error(error, relevance) for error in errors]


# --------------------------------------------------------------------------------------------------------------
# Validation: the rules the JSON Schema cannot express


def reference_problems(document):
    """Every "$ref" of the document that does not point at something in the document."""
    problems = []
    for path, ref in iter_references(document):
        try:
            resolve_reference(document, ref)
        except UnresolvedReference as error:
            problems.append(f"rule: at {describe_location(path)}: $ref does not resolve: {error}")
    return problems


def reference_tokens(holder):
    """The decoded pointer tokens of a reference object {"$ref": ...}, or None when it is not one."""
    if not isinstance(holder, dict):
        return None
    try:
        return pointer_tokens(holder.get("$ref"))
    except UnresolvedReference:
        return None


def operation_channel_problems(document):
    """3.0: an operation's channel is #/channels/<key>, and each of its messages is #/channels/<key>/messages/*."""
    problems = []
    for name, operation in (document.get("operations") or {}).items():
        if not isinstance(operation, dict) or "$ref" in operation:
            continue
        channel = reference_tokens(operation.get("channel"))
        if channel is None or len(channel) != 2 or channel[0] != "channels":
            shown = (operation.get("channel") or {}).get("$ref") if isinstance(operation.get("channel"), dict) else None
            problems.append(f"rule: operation {name!r}: its channel must reference #/channels/<key>, got {shown!r}")
            continue
        for index, message in enumerate(operation.get("messages") or []):
            tokens = reference_tokens(message)
            if tokens is None or len(tokens) != 4 or tokens[:3] != [*channel, "messages"]:
                shown = message.get("$ref") if isinstance(message, dict) else message
                problems.append(f"rule: operation {name!r}: messages[{index}] {shown!r} is not a message of its "
                                f"channel {channel[1]!r} (AsyncAPI 3.0: an operation's messages are a subset of its "
                                f"channel's, referenced as #/channels/<key>/messages/<message key>)")
    return problems


def channel_server_problems(document):
    """3.0: each entry of a channel's `servers` references #/servers/<name>."""
    problems = []
    for name, channel in (document.get("channels") or {}).items():
        servers = channel.get("servers") if isinstance(channel, dict) else None
        for index, server in enumerate(servers or []):
            tokens = reference_tokens(server)
            if tokens is None or len(tokens) != 2 or tokens[0] != "servers":
                problems.append(f"rule: channel {name!r}: servers[{index}] must reference #/servers/<name>")
    return problems


def operations_v2(document):
    """2.6: every (channel key, channel, "publish" or "subscribe", operation object) of the document."""
    for channel_key, channel in (document.get("channels") or {}).items():
        for kind in ("publish", "subscribe"):
            operation = channel.get(kind) if isinstance(channel, dict) else None
            if isinstance(operation, dict):
                yield channel_key, channel, kind, operation


def inline_messages_v2(operation):
    """2.6: the message objects written inside an operation (its `message`, or each of `message.oneOf`)."""
    message = operation.get("message")
    if not isinstance(message, dict) or "$ref" in message:
        return []
    candidates = message.get("oneOf", [message])
    return [candidate for candidate in candidates if isinstance(candidate, dict) and "$ref" not in candidate]


def duplicates(pairs, what):
    """A problem for each identifier claimed by more than one place, from (identifier, place) pairs."""
    first_place, problems = {}, []
    for identifier, place in pairs:
        if identifier is None:
            continue
        if identifier in first_place:
            problems.append(f"rule: {what} {identifier!r} is used by {first_place[identifier]} and {place}")
        else:
            first_place[identifier] = place
    return problems


def unique_identifier_problems(document):
    """2.6: operationIds are unique, and so are the messageIds of distinct message objects."""
    operation_ids = [(operation.get("operationId"), f"{key}.{kind}")
                     for key, _, kind, operation in operations_v2(document)]
    message_ids = [(message.get("messageId"), f"components/messages/{key}")
                   for key, message in ((document.get("components") or {}).get("messages") or {}).items()
                   if isinstance(message, dict)]
    for key, _, kind, operation in operations_v2(document):
        message_ids.extend((message.get("messageId"), f"{key}.{kind}") for message in inline_messages_v2(operation))
    return duplicates(operation_ids, "operationId") + duplicates(message_ids, "messageId")


def validate_document(document, validators):
    """Every problem of an AsyncAPI document: the official schema's, then the extra rules'."""
    if not isinstance(document, dict):
        return ["document: the top level is not a JSON object"]
    version = document.get("asyncapi")
    if version not in SCHEMA_FILES:
        return [f"document: unsupported or missing 'asyncapi' version {version!r} "
                f"(supported: {', '.join(SCHEMA_FILES)})"]
    problems = schema_problems(validators.for_version(version), document) + reference_problems(document)
    if version.startswith("3."):
        problems += operation_channel_problems(document) + channel_server_problems(document)
    else:
        problems += unique_identifier_problems(document)
    return problems


# --------------------------------------------------------------------------------------------------------------
# Comparison: operations


@dataclass
class Operation:
    """One operation as the comparison sees it, in 3.0's terms whatever the document's version."""
    action: str          # "receive" (the application consumes) or "send"
    address: object      # the channel's address, from `address` or from its binding
    channel: dict
    messages: list       # message objects, references followed
    names: dict          # the names FastStream gives, for --names

    @property
    def label(self):
        return f"{self.action} {self.address!r}"


def channel_address(channel, version):
    """Where a channel's messages go: 3.0's `address`, else the destination its binding names."""
    if version.startswith("3.") and channel.get("address") is not None:
        return channel["address"]
    bindings = channel.get("bindings") or {}
    if "kafka" in bindings:
        return bindings["kafka"].get("topic")
    if "redis" in bindings:
        return bindings["redis"].get("channel")
    if "nats" in bindings:
        return bindings["nats"].get("subject")
    if "amqp" in bindings:
        amqp = bindings["amqp"]
        return (amqp.get("queue") or {}).get("name") or (amqp.get("exchange") or {}).get("name")
    return None


def binding_identity(channel):
    """Per protocol, the binding fields that say where messages go: what both documents must agree on."""
    identity = {}
    for protocol, binding in (channel.get("bindings") or {}).items():
        binding = binding if isinstance(binding, dict) else {}
        if protocol == "kafka":
            identity[protocol] = {"topic": binding.get("topic")}
        elif protocol == "redis":
            identity[protocol] = {"channel": binding.get("channel"), "method": binding.get("method")}
        elif protocol == "nats":
            identity[protocol] = {"subject": binding.get("subject"), "queue": binding.get("queue")}
        elif protocol == "amqp":
            queue, exchange = binding.get("queue") or {}, binding.get("exchange") or {}
            identity[protocol] = {"is": binding.get("is"), "queue": queue.get("name"),
                                  "exchange.type": exchange.get("type"), "exchange.name": exchange.get("name")}
        else:
            identity[protocol] = {}
    return identity


def message_of_channel_v3(document, channel, message_ref):
    """3.0: (channel's message key, components/messages key or None, the message object) for an operation's
    reference to one of its channel's messages."""
    message_key = last_token(message_ref.get("$ref"))
    in_channel = (channel.get("messages") or {}).get(message_key) or {}
    component_key = last_token(in_channel["$ref"]) if "$ref" in in_channel else None
    return message_key, component_key, follow_references(document, message_ref)


def operations_of_v3(document):
    """3.0: the document's operations."""
    version = document["asyncapi"]
    result = []
    for operation_key, operation in (document.get("operations") or {}).items():
        operation = follow_references(document, operation)
        channel_ref = (operation.get("channel") or {}).get("$ref")
        channel = resolve_reference(document, channel_ref)
        names, messages = [], []
        for message_ref in operation.get("messages") or []:
            message_key, component_key, message = message_of_channel_v3(document, channel, message_ref)
            names.append((message_key, component_key, message.get("title")))
            messages.append(message)
        result.append(Operation(
            action=operation.get("action"), address=channel_address(channel, version), channel=channel,
            messages=messages,
            names={"channel": last_token(channel_ref), "operation": operation_key, "messages": names}))
    return result


def operations_of_v2(document):
    """2.6: a channel's `publish` is what the application receives, its `subscribe` what it sends."""
    version = document["asyncapi"]
    actions = {"publish": "receive", "subscribe": "send"}
    result = []
    for channel_key, channel, kind, operation in operations_v2(document):
        message = operation.get("message") or {}
        parts = [message] if "$ref" in message else message.get("oneOf", [message])
        messages = [follow_references(document, part) for part in parts]
        names = [(None, last_token(part["$ref"]) if "$ref" in part else None, resolved.get("title"))
                 for part, resolved in zip(parts, messages)]
        result.append(Operation(
            action=actions[kind], address=channel_address(channel, version), channel=channel, messages=messages,
            names={"channel": channel_key, "operation": operation.get("operationId"), "messages": names}))
    return result


def operations_of(document):
    """The document's operations, whatever its AsyncAPI version."""
    if str(document.get("asyncapi", "")).startswith("3."):
        return operations_of_v3(document)
    return operations_of_v2(document)


def operations_by_destination(document):
    """The document's operations grouped by (action, address)."""
    groups = {}
    for operation in operations_of(document):
        groups.setdefault((operation.action, operation.address), []).append(operation)
    return groups


# --------------------------------------------------------------------------------------------------------------
# Comparison: payload schemas


def without_annotations(node):
    """A schema object without the keywords that only annotate."""
    return {key: value for key, value in node.items() if key not in ANNOTATIONS}


def is_null_schema(node):
    """Whether a schema is {type: null}, the "or None" half of an optional."""
    return isinstance(node, dict) and node.get("type") == "null"


def is_decimal(alternatives):
    """pydantic's Decimal: exactly {type: number} and {type: string}, in either order."""
    if len(alternatives) != 2 or not all(isinstance(a, dict) for a in alternatives):
        return False
    stripped = [without_annotations(a) for a in alternatives]
    return sorted(a.get("type", "") for a in stripped) == ["number", "string"] and all(len(a) == 1 for a in stripped)


def schema_shape(document, node, seen=()):
    """A comparable form of a payload schema: references followed (a reference already being followed becomes
    {"recursive": name}), annotations dropped, nullability split off into "nullable"."""
    if isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            return {"recursive": last_token(ref)}
        return schema_shape(document, resolve_reference(document, ref), seen + (ref,))
    node = without_annotations(node) if isinstance(node, dict) else {}
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            return alternatives_shape(document, node[keyword], seen)
    return typed_shape(document, node, seen)


def alternatives_shape(document, alternatives, seen):
    """The shape of an anyOf/oneOf: a decimal, one nullable type, or a union."""
    others = [a for a in alternatives if not is_null_schema(a)]
    nullable = len(others) < len(alternatives)
    if is_decimal(others):
        return {"decimal": True, "nullable": nullable}
    if len(others) == 1:
        inner = schema_shape(document, others[0], seen)
        inner["nullable"] = inner.get("nullable", False) or nullable
        return inner
    return {"union": [schema_shape(document, a, seen) for a in others], "nullable": nullable}


def declared_type(node):
    """(type, nullable) from `type`; a list with "null" in it is that type, nullable."""
    declared = node.get("type")
    if not isinstance(declared, list):
        return declared, False
    others = sorted(t for t in declared if t != "null")
    return (others[0] if len(others) == 1 else others), "null" in declared


def typed_shape(document, node, seen):
    """The shape of a schema that is not a union: anything, or a type with its constraints."""
    kind, nullable = declared_type(node)
    if kind is None and not any(keyword in node for keyword in STRUCTURAL_KEYWORDS):
        return {"any": True, "nullable": nullable}
    shape = {"type": kind, "nullable": nullable}
    for keyword in ("format", "contentEncoding"):
        if keyword in node:
            shape[keyword] = node[keyword]
    if "enum" in node:
        shape["enum"] = sorted(json.dumps(value, sort_keys=True) for value in node["enum"])
    if "const" in node:
        shape["enum"] = [json.dumps(node["const"], sort_keys=True)]
    if kind == "object" or "properties" in node:
        shape["properties"] = {name: schema_shape(document, value, seen)
                               for name, value in (node.get("properties") or {}).items()}
        shape["required"] = sorted(node.get("required") or [])
        if isinstance(node.get("additionalProperties"), dict):
            shape["additionalProperties"] = schema_shape(document, node["additionalProperties"], seen)
    if kind == "array" or "items" in node:
        shape["items"] = schema_shape(document, node.get("items") or {}, seen)
    return shape


@dataclass
class Findings:
    """What a comparison found: differences (failing) and notes (not failing)."""
    differences: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def extend(self, other, prefix=""):
        self.differences.extend(prefix + line for line in other.differences)
        self.notes.extend(prefix + line for line in other.notes)


def sub_location(where, suffix):
    """The location of a part of a payload: "" is the payload itself."""
    if suffix.startswith(("[", "{")):
        return (where or "(payload)") + suffix
    return f"{where}.{suffix}" if where else suffix


def compare_shapes(mine, reference, where, strict, findings):
    """Records how the shape `mine` falls short of `reference` (FastStream's, the yardstick)."""
    shown = where or "(payload)"
    if reference.get("any"):
        return
    if mine.get("nullable") != reference.get("nullable"):
        line = f"{shown}: nullable {mine.get('nullable')} here, {reference.get('nullable')} in FastStream's"
        (findings.differences if strict else findings.notes).append(line)
    if reference.get("decimal"):
        if not (mine.get("decimal") or mine.get("type") in ("number", "string")):
            findings.differences.append(f"{shown}: a decimal (number or string) in FastStream's, {mine} here")
        return
    if "recursive" in reference or "recursive" in mine:
        if mine.get("recursive") != reference.get("recursive"):
            findings.notes.append(f"{shown}: recursion into {mine.get('recursive')!r} here, "
                                  f"{reference.get('recursive')!r} in FastStream's")
        return
    if "union" in reference:
        if len(mine.get("union", [])) != len(reference["union"]):
            findings.differences.append(f"{shown}: a union of {len(reference['union'])} in FastStream's, {mine} here")
        return
    if mine.get("type") != reference.get("type"):
        findings.differences.append(f"{shown}: type {mine.get('type')!r} here, "
                                    f"{reference.get('type')!r} in FastStream's")
        return
    compare_facets(mine, reference, shown, findings)
    compare_properties(mine, reference, where, strict, findings)
    compare_contents(mine, reference, where, strict, findings)


def compare_facets(mine, reference, shown, findings):
    """`format` and `contentEncoding` where FastStream gives them, and the enumerated values."""
    for keyword in ("format", "contentEncoding"):
        if keyword not in reference or mine.get(keyword) == reference[keyword]:
            continue
        if keyword == "format" and reference[keyword] == "binary" and mine.get("contentEncoding") == "base64":
            continue  # pydantic's bytes are `format: binary`; in JSON they travel as a base64 string
        findings.differences.append(f"{shown}: {keyword} {mine.get(keyword)!r} here, "
                                    f"{reference[keyword]!r} in FastStream's")
    if "enum" in reference and sorted(mine.get("enum", [])) != reference["enum"]:
        findings.differences.append(f"{shown}: enum {mine.get('enum')} here, {reference['enum']} in FastStream's")


def compare_properties(mine, reference, where, strict, findings):
    """An object's property names, its `required` set, and each property common to both."""
    if "properties" not in reference:
        return
    shown = where or "(payload)"
    ours, theirs = mine.get("properties", {}), reference["properties"]
    if set(ours) != set(theirs):
        findings.differences.append(f"{shown}: properties {sorted(ours)} here, {sorted(theirs)} in FastStream's")
    if mine.get("required", []) != reference.get("required", []):
        findings.differences.append(f"{shown}: required {mine.get('required', [])} here, "
                                    f"{reference.get('required', [])} in FastStream's")
    for name in sorted(set(ours) & set(theirs)):
        compare_shapes(ours[name], theirs[name], sub_location(where, name), strict, findings)


def compare_contents(mine, reference, where, strict, findings):
    """A map's values (additionalProperties) and an array's items."""
    for keyword, suffix in (("additionalProperties", "{*}"), ("items", "[]")):
        if keyword not in reference:
            continue
        location = sub_location(where, suffix)
        if keyword not in mine and not reference[keyword].get("any"):
            findings.differences.append(f"{location}: no {keyword} here, {reference[keyword]} in FastStream's")
            continue
        compare_shapes(mine.get(keyword, {"any": True, "nullable": False}), reference[keyword], location, strict,
                       findings)


# --------------------------------------------------------------------------------------------------------------
# Comparison: documents


NAME_LABELS = {"channel": "channel key", "operation": "operation key",
               "messages": "messages (channel's message key, components/messages key, title)"}


def name_differences(ours, theirs):
    """One difference per name FastStream gives that we give differently (--names)."""
    return [f"{NAME_LABELS[kind]} {ours[kind]!r} here, {theirs[kind]!r} in FastStream's"
            for kind in NAME_LABELS if ours[kind] != theirs[kind]]


def compare_operation(mine, mine_document, reference, reference_document, names, strict):
    """How one operation of ours differs from FastStream's counterpart (same action and address)."""
    findings = Findings()
    ours, theirs = binding_identity(mine.channel), binding_identity(reference.channel)
    if ours != theirs:
        findings.differences.append(f"bindings {ours} here, {theirs} in FastStream's")
    if names:
        findings.differences.extend(name_differences(mine.names, reference.names))
    if len(mine.messages) != len(reference.messages):
        findings.differences.append(f"{len(mine.messages)} message(s) here, {len(reference.messages)} in FastStream's")
        return findings
    for index, (our_message, their_message) in enumerate(zip(mine.messages, reference.messages)):
        payload = Findings()
        compare_shapes(schema_shape(mine_document, our_message.get("payload", {})),
                       schema_shape(reference_document, their_message.get("payload", {})), "", strict, payload)
        findings.extend(payload, prefix=f"message {index}: ")
    return findings


def pair_operations(ours, theirs, compare):
    """Pairs the operations of one (action, address) in both documents: each of FastStream's takes the first
    unpaired one of ours that agrees with it, else the first unpaired one (the document order is arbitrary).
    Returns the findings of the chosen pairs."""
    remaining, chosen = list(ours), Findings()
    for reference in theirs:
        attempts = [(candidate, compare(candidate, reference)) for candidate in remaining]
        candidate, findings = next(((c, f) for c, f in attempts if not f.differences), attempts[0])
        remaining.remove(candidate)
        chosen.extend(findings)
    return chosen


def server_protocols(document):
    """The protocols of the document's servers, sorted: both documents must speak the same ones."""
    servers = document.get("servers") or {}
    servers = servers.values() if isinstance(servers, dict) else []
    return sorted({str(server.get("protocol")) for server in servers if isinstance(server, dict)})


def compare_documents(mine, reference, names=False, strict=False):
    """How the document `mine` differs from FastStream's `reference` for the same application."""
    findings = Findings()
    if not isinstance(mine, dict) or not isinstance(reference, dict):
        findings.differences.append("a document is not a JSON object")
        return findings
    if mine.get("asyncapi") != reference.get("asyncapi"):
        findings.differences.append(f"asyncapi {mine.get('asyncapi')!r} here, "
                                    f"{reference.get('asyncapi')!r} in FastStream's")
        return findings
    if server_protocols(mine) != server_protocols(reference):
        findings.differences.append(f"server protocols {server_protocols(mine)} here, "
                                    f"{server_protocols(reference)} in FastStream's")
    try:
        ours, theirs = operations_by_destination(mine), operations_by_destination(reference)
    except MALFORMED as error:
        findings.differences.append(f"cannot read the operations here: {type(error).__name__}: {error}")
        return findings

    def compare(candidate, counterpart):
        return compare_operation(candidate, mine, counterpart, reference, names, strict)

    for key in sorted(set(ours) | set(theirs), key=str):
        label = f"{key[0]} {key[1]!r}"
        if len(ours.get(key, [])) != len(theirs.get(key, [])):
            findings.differences.append(f"{label}: {len(ours.get(key, []))} operation(s) here, "
                                        f"{len(theirs.get(key, []))} in FastStream's")
            continue
        try:
            findings.extend(pair_operations(ours[key], theirs[key], compare), prefix=f"{label}: ")
        except MALFORMED as error:
            findings.differences.append(f"{label}: cannot compare the payloads: {type(error).__name__}: {error}")
    return findings


# --------------------------------------------------------------------------------------------------------------
# Commands


def print_indented(lines, indent="  "):
    for line in lines:
        print(indent + line.replace("\n", "\n" + indent))


def read_document(path):
    """(document, None), or (None, the problem) when the file is not readable JSON."""
    try:
        return read_json(path), None
    except (OSError, ValueError) as error:
        return None, f"document: cannot read JSON from {path}: {error}"


def run_validate(arguments):
    """validate: every problem of each document; exit 1 when any has one."""
    validators, status = Validators(arguments.schemas), EXIT_OK
    for path in arguments.documents:
        document, unreadable = read_document(path)
        problems = [unreadable] if unreadable else validate_document(document, validators)
        if problems:
            print(f"{path}: INVALID, {len(problems)} problem(s):")
            print_indented(problems)
            status = EXIT_FAILED
        else:
            print(f"{path}: valid AsyncAPI {document['asyncapi']}")
    return status


def run_compare(arguments):
    """compare: notes, then the differences; exit 1 when there are differences."""
    documents = []
    for path in (arguments.document, arguments.reference):
        document, unreadable = read_document(path)
        if unreadable:
            print(unreadable)
            return EXIT_FAILED
        documents.append(document)
    findings = compare_documents(*documents, names=arguments.names, strict=arguments.strict)
    print_indented(findings.notes, indent="note: ")
    if findings.differences:
        print(f"{arguments.document} differs from {arguments.reference}:")
        print_indented(findings.differences)
        return EXIT_FAILED
    print(f"{arguments.document} agrees with {arguments.reference}" + (" (names too)" if arguments.names else ""))
    return EXIT_OK


def reference_files(references_dir):
    """FastStream's reference documents in a directory, by name."""
    found = sorted(Path(references_dir).glob(f"{REFERENCE_PREFIX}*.json"))
    if not found:
        raise CannotRun(f"no {REFERENCE_PREFIX}*.json in {references_dir}")
    return found


def check_pair(document_path, reference_path, validators, names, strict):
    """(status word, detail lines, notes) for one of Courier's documents against FastStream's."""
    reference, unreadable = read_document(reference_path)
    if unreadable:
        raise CannotRun(unreadable)
    document, unreadable = read_document(document_path)
    if unreadable:
        return "INVALID", [unreadable], []
    problems = validate_document(document, validators)
    findings = compare_documents(document, reference, names=names, strict=strict)
    words = [word for word, failed in (("INVALID", problems), ("DIFFERS", findings.differences)) if failed]
    return " AND ".join(words) or "ok", problems + findings.differences, findings.notes


def run_all(arguments):
    """all: each reference against Courier's document of the same name; exit 1 when any fails or is missing."""
    validators = Validators(arguments.schemas)
    counts = {"ok": 0, "failed": 0, "missing": 0}
    for reference_path in reference_files(arguments.references):
        name = DOCUMENT_PREFIX + reference_path.name[len(REFERENCE_PREFIX):]
        document_path = Path(arguments.documents) / name
        if not document_path.is_file():
            print(f"MISSING {name} (for {reference_path.name}, in {arguments.documents})")
            counts["missing"] += 1
            continue
        status, details, notes = check_pair(document_path, reference_path, validators,
                                            arguments.names, arguments.strict)
        print(f"{status} {name}" + ("" if status == "ok" else f" (against {reference_path.name})"))
        print_indented(details)
        print_indented(notes, indent="  note: ")
        counts["ok" if status == "ok" else "failed"] += 1
    total = sum(counts.values())
    print(f"{total} pair(s): {counts['ok']} ok, {counts['failed']} failed, {counts['missing']} missing")
    return EXIT_OK if counts["ok"] == total else EXIT_FAILED


def argument_parser():
    parser = argparse.ArgumentParser(
        description="Validates Courier's AsyncAPI documents and compares them with FastStream's.",
        epilog="Exit status: 0 good, 1 invalid / different / missing, 2 usage error or cannot run.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_schemas(command):
        command.add_argument("--schemas", type=Path, default=DEFAULT_SCHEMAS,
                             help="directory of asyncapi-3.0.0.json and asyncapi-2.6.0.json (default: %(default)s)")

    def add_comparison_options(command):
        command.add_argument("--names", action="store_true", help="also require FastStream's names")
        command.add_argument("--strict", action="store_true", help="nullability differences fail too")

    validate = commands.add_parser("validate", help="official JSON Schema plus the rules it cannot express")
    add_schemas(validate)
    validate.add_argument("documents", nargs="+", metavar="DOC.json")
    validate.set_defaults(run=run_validate)

    compare = commands.add_parser("compare", help="structural agreement with FastStream's document")
    add_comparison_options(compare)
    compare.add_argument("document", metavar="DOC.json")
    compare.add_argument("reference", metavar="REFERENCE.json")
    compare.set_defaults(run=run_compare)

    every = commands.add_parser("all", help="validate and compare courier-X.json for every faststream-X.json")
    add_schemas(every)
    add_comparison_options(every)
    every.add_argument("--references", type=Path, default=DEFAULT_REFERENCES,
                       help="directory of faststream-*.json (default: %(default)s)")
    every.add_argument("--documents", type=Path, required=True, help="directory of courier-*.json")
    every.set_defaults(run=run_all)
    return parser


def main(argv):
    arguments = argument_parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except CannotRun as error:
        print(f"asyncapi-check: {error}", file=sys.stderr)
        return EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
