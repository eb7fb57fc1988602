"""Tool discovery from OpenAPI: the real Gym 0.4 documents, recursion, names."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from react_eval.gym.openapi import (
    MAX_REF_DEPTH,
    RESERVED_PATHS,
    PathParameterError,
    SchemaResolver,
    assign_tool_names,
    contains_ref,
    discover_tools,
)

REFERENCE = Path("/work/shared/reference/nemo-gym")
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def reference_doc(name: str) -> dict:
    path = REFERENCE / f"{name}.openapi.json"
    if not path.exists():
        pytest.skip(f"reference data not present: {path}")
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    "name, tools",
    [
        ("example_session_state_mgmt", {"increment_counter": "/increment_counter", "get_counter_value": "/get_counter_value"}),
        ("example_multi_step", {"get_synonym_value": "/get_synonym_value", "extract_synonym_values": "/extract_synonym_values"}),
    ],
)
def test_discovers_exactly_the_tools_of_the_real_gym_servers(name, tools):
    doc = reference_doc(name)
    started = time.perf_counter()
    catalog = discover_tools(doc)
    elapsed = time.perf_counter() - started
    assert {n: r.path for n, r in catalog.routes.items()} == tools
    assert catalog.skipped == []
    for route in catalog.routes.values():
        assert route.path not in RESERVED_PATHS
        assert not contains_ref(route.parameters)
        assert route.parameters["type"] == "object"
        orjson.dumps(route.parameters)  # JSON-serialisable
        Draft202012Validator.check_schema(route.parameters)
        assert route.description  # from summary/description
    assert elapsed < 0.5


def test_reference_schemas_resolve_without_refs_and_fast():
    doc = reference_doc("example_session_state_mgmt")
    multi = discover_tools(reference_doc("example_multi_step"))
    assert multi.routes["get_synonym_value"].parameters["required"] == ["synonym"]
    catalog = discover_tools(doc)
    assert catalog.routes["increment_counter"].parameters["properties"]["count"]["type"] == "integer"
    assert catalog.routes["get_counter_value"].body == "none"  # no requestBody: called without one
    for name in ("example_session_state_mgmt", "example_multi_step"):
        doc = reference_doc(name)
        started = time.perf_counter()
        resolver = SchemaResolver(doc)
        every = {n: resolver.resolve_ref(f"#/components/schemas/{n}") for n in doc["components"]["schemas"]}
        assert time.perf_counter() - started < 2.0
        assert not contains_ref(every)
        assert len(orjson.dumps(every)) < 5_000_000
    # the deep Responses types come out whole: e.g. the required fields of a Response
    response = every["NeMoGymResponse"]
    assert {"id", "created_at", "model", "object", "output", "parallel_tool_calls", "tool_choice", "tools"} <= set(response["required"])
    kinds = {b.get("title") for b in response["properties"]["output"]["items"]["anyOf"]}
    assert {"NeMoGymResponseFunctionToolCall", "NeMoGymFunctionCallOutput", "NeMoGymResponseOutputMessage"} <= kinds


def test_the_resolved_reference_verify_schema_accepts_the_captured_body_and_rejects_a_broken_one():
    doc = reference_doc("example_session_state_mgmt")
    rollout = json.loads((REFERENCE / "counter.one_rollout.json").read_text())
    body = rollout[-1]["req_body"]
    schema = SchemaResolver(doc).resolve_ref("#/components/schemas/StatefulCounterVerifyRequest")
    validator = Draft202012Validator(schema)
    assert list(validator.iter_errors(body)) == []
    broken = json.loads(json.dumps(body))
    del broken["response"]["parallel_tool_calls"]
    assert any("parallel_tool_calls" in e.message for e in validator.iter_errors(broken))


def _doc(paths: dict, schemas: dict | None = None) -> dict:
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": schemas or {}}}


def _post(schema_ref: str | None = None, **op) -> dict:
    body = {"requestBody": {"content": {"application/json": {"schema": {"$ref": schema_ref}}}, "required": True}} if schema_ref else {}
    return {"post": {**body, **op, "responses": {"200": {"description": "ok"}}}}


def test_self_and_mutual_recursion_terminate_and_stay_usable():
    schemas = {
        "Node": {"type": "object", "title": "Node", "required": ["value"], "properties": {
            "value": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}},
        "Folder": {"type": "object", "title": "Folder", "properties": {
            "entries": {"type": "array", "items": {"$ref": "#/components/schemas/Entry"}}}},
        "Entry": {"type": "object", "title": "Entry", "properties": {
            "folder": {"anyOf": [{"$ref": "#/components/schemas/Folder"}, {"type": "null"}]}}},
        "Json": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/components/schemas/Json"}}]},
    }
    doc = _doc({"/tree": _post("#/components/schemas/Node"), "/fs": _post("#/components/schemas/Folder"),
                "/json": _post("#/components/schemas/Json")}, schemas)
    started = time.perf_counter()
    catalog = discover_tools(doc)
    assert time.perf_counter() - started < 0.5
    tree = catalog.routes["tree"].parameters
    assert not contains_ref(catalog.routes["fs"].parameters) and not contains_ref(tree)
    inner = tree["properties"]["children"]["items"]
    assert inner["type"] == "object" and "Recursive" in inner["description"] and "Node" in inner["description"]
    # a deep tree is accepted (the cut point is permissive), a wrong top level is not
    validator = Draft202012Validator(tree)
    deep = {"value": 1, "children": [{"value": 2, "children": [{"value": 3, "children": []}]}]}
    assert list(validator.iter_errors(deep)) == []
    assert list(validator.iter_errors({"children": []}))  # value is required
    folder_entry = catalog.routes["fs"].parameters["properties"]["entries"]["items"]
    assert "Recursive" in folder_entry["properties"]["folder"]["anyOf"][0]["description"]
    # a recursive union has no "type" to keep: the stub does not invent one
    assert catalog.routes["json"].body == "wrapped"
    json_items = catalog.routes["json"].parameters["properties"]["body"]["anyOf"][1]["items"]
    assert "type" not in json_items and "Recursive" in json_items["description"]


def test_a_long_chain_of_refs_is_cut_at_the_depth_limit():
    schemas = {f"S{i}": {"type": "object", "properties": {"next": {"$ref": f"#/components/schemas/S{i + 1}"}}}
               for i in range(MAX_REF_DEPTH + 20)}
    schemas[f"S{MAX_REF_DEPTH + 20}"] = {"type": "string"}
    catalog = discover_tools(_doc({"/chain": _post("#/components/schemas/S0")}, schemas))
    text = json.dumps(catalog.routes["chain"].parameters)
    assert "$ref" not in text and "nested too deeply" in text


def test_ref_siblings_merge_and_data_keywords_are_not_resolved():
    schemas = {"Count": {"type": "integer", "title": "Count"},
               "Req": {"type": "object", "properties": {
                   "n": {"$ref": "#/components/schemas/Count", "description": "how many"},
                   "example_blob": {"type": "object", "default": {"$ref": "not-a-schema"}}},
                   "discriminator": {"propertyName": "kind", "mapping": {"a": "#/components/schemas/Count"}}}}
    params = discover_tools(_doc({"/x": _post("#/components/schemas/Req")}, schemas)).routes["x"].parameters
    assert params["properties"]["n"] == {"type": "integer", "title": "Count", "description": "how many"}
    assert params["properties"]["example_blob"]["default"] == {"$ref": "not-a-schema"}  # data, kept verbatim
    assert "discriminator" not in params


def test_reserved_and_non_post_paths_are_not_tools():
    paths = {p: _post() for p in ("/seed_session", "/verify", "/aggregate_metrics", "/run", "/health", "/docs", "/close_session")}
    paths["/status"] = {"get": {"responses": {}}}
    paths["/act"] = _post(summary="Act", description="Do the thing.")
    catalog = discover_tools(_doc(paths))
    assert list(catalog.routes) == ["act"]
    assert catalog.routes["act"].description == "Act\n\nDo the thing."


def test_tool_names_are_valid_unique_and_map_back_exactly():
    long_a = "/" + "/".join(["segment"] * 12) + "/a"
    long_b = "/" + "/".join(["segment"] * 12) + "/b"
    paths = ["/increment", "/a/b", "/a__b", "/fs/v1.0/read", "/with space/x", "/items/{id}/tag", long_a, long_b, "/ünï/cödé"]
    names = assign_tool_names(paths)
    assert names["/increment"] == "increment"
    assert names["/a__b"] == "a__b"  # a flat path keeps its exact name...
    assert names["/a/b"] != "a__b" and names["/a/b"].startswith("a__b_")  # ...the nested one is disambiguated
    assert names["/fs/v1.0/read"] == "fs__v1_0__read"
    assert names["/items/{id}/tag"] == "items__id__tag"
    assert len(set(names.values())) == len(paths)
    for name in names.values():
        assert NAME_RE.match(name), name
    assert names[long_a] != names[long_b]
    # and through a catalog: name -> path -> name round-trips for every tool
    catalog = discover_tools(_doc({p: _post() for p in paths}))
    assert sorted(r.path for r in catalog.routes.values()) == sorted(paths)
    for name, route in catalog.routes.items():
        assert catalog.path_for(name) == route.path
        assert catalog.name_for(route.path) == name
    assert assign_tool_names(list(reversed(paths))) == names  # deterministic, independent of order of ties


def test_path_and_query_parameters_become_arguments_and_go_into_the_url():
    doc = _doc({"/items/{item_id}/tag": {
        "parameters": [{"name": "item_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "post": {"parameters": [{"name": "upper", "in": "query", "schema": {"type": "boolean"}}],
                 "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Tag"}}}},
                 "responses": {}}}},
        {"Tag": {"type": "object", "properties": {"tag": {"type": "string"}}, "required": ["tag"]}})
    route = discover_tools(doc).routes["items__item_id__tag"]
    assert set(route.parameters["properties"]) == {"tag", "item_id", "upper"}
    assert set(route.parameters["required"]) == {"tag", "item_id"}
    assert route.request({"item_id": "a.b c%2e", "tag": "x", "upper": True}) == (
        "/items/a%2Eb%20c%252e/tag", {"upper": True}, {"tag": "x"})


def test_operations_we_cannot_call_are_skipped_with_a_reason():
    doc = _doc({
        "/upload": {"post": {"requestBody": {"content": {"multipart/form-data": {"schema": {}}}}, "responses": {}}},
        "/auth": {"post": {"parameters": [{"name": "x-token", "in": "header", "required": True}], "responses": {}}},
        "/broken": _post("#/components/schemas/Missing"),
        "/fine": _post(),
    })
    catalog = discover_tools(doc)
    assert list(catalog.routes) == ["fine"]
    reasons = dict(catalog.skipped)
    assert "not JSON" in reasons["/upload"]
    assert "header" in reasons["/auth"]
    assert "points at nothing" in reasons["/broken"]


@pytest.mark.parametrize("value", ["..", ".", "", "a/b", "../verify", "x\\y"])
def test_a_path_parameter_never_leaves_its_segment(value):
    doc = {"openapi": "3.1.0", "paths": {"/d/{d}/{name}": {"post": {"parameters": [
        {"name": "d", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}], "responses": {}}}}}
    route = discover_tools(doc).routes["d__d__name"]
    with pytest.raises(PathParameterError):
        route.request({"d": value, "name": "verify"})
    # percent-encoded dots stay data: the server decodes them to the literal text
    assert route.request({"d": "%2e%2e", "name": "verify"})[0] == "/d/%252e%252e/verify"


def test_a_path_parameter_cannot_address_a_protocol_endpoint():
    doc = {"openapi": "3.1.0", "paths": {"/{tool}": {"post": {"parameters": [
        {"name": "tool", "in": "path", "required": True, "schema": {"type": "string"}}], "responses": {}}}}}
    route = next(iter(discover_tools(doc).routes.values()))
    assert route.request({"tool": "lookup"})[0] == "/lookup"
    for reserved in ("verify", "seed_session", "aggregate_metrics", "openapi.json", "docs"):
        with pytest.raises(PathParameterError, match="protocol endpoint"):
            route.request({"tool": reserved})
