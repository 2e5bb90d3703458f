"""The twin-level schema cache changes no finding: same content → same findings, anything else is re-checked."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from edgegen.generator.validation import schema, validate_manifest

BASE = Path(__file__).parent / "data" / "valid" / "valid-agent1.1-hub1.2.json"


def base() -> dict[str, Any]:
    return json.loads(BASE.read_text())  # type: ignore[no-any-return]


def agent(m: dict[str, Any]) -> dict[str, Any]:
    return m["modulesContent"]["$edgeAgent"]["properties.desired"]  # type: ignore[no-any-return]


def schema_messages(m: Any) -> list[tuple[str, str]]:
    return [(f.path, f.message) for f in validate_manifest(m) if f.rule == "schema"]


def uncached(m: dict[str, Any]) -> list[tuple[str, str]]:
    schema.clear_caches()
    return schema_messages(m)


def test_repeated_and_changed_content() -> None:
    m = base()
    agent(m)["modules"]["sensor"]["restartPolicy"] = "sometimes"
    first = uncached(m)
    assert any("restartPolicy is 'sometimes'" in msg for _, msg in first)
    assert schema_messages(m) == first  # served from the cache
    agent(m)["modules"]["sensor"]["restartPolicy"] = "always"  # same object, new content: checked again
    assert schema_messages(m) == [] == uncached(m)
    agent(m)["modules"]["sensor"]["restartPolicy"] = "sometimes"
    assert schema_messages(m) == first


def test_key_order_and_value_types_are_part_of_the_key() -> None:
    m1, m2 = base(), base()
    agent(m1)["modules"]["sensor"].update({"zz": 1, "aa": 2})
    agent(m2)["modules"]["sensor"].update({"aa": 2, "zz": 1})
    uncached(m1)
    got1, got2 = schema_messages(m1), schema_messages(m2)
    assert got1 == uncached(m1) and got2 == uncached(m2)
    assert [p for p, _ in got1] != [p for p, _ in got2]  # the errors follow each instance's own key order
    m3 = base()
    agent(m3)["modules"]["sensor"]["startupOrder"] = 1.5  # 1.5 vs "1.5" vs True: different reprs, verdicts
    for value in (1.5, "1.5", True, 2):
        agent(m3)["modules"]["sensor"]["startupOrder"] = value
        assert schema_messages(m3) == uncached(m3)


def test_deployment_root_gets_its_own_paths() -> None:
    m = base()
    agent(m)["modules"]["sensor"]["restartPolicy"] = "sometimes"
    dep = {"content": copy.deepcopy(m)}
    plain, wrapped = schema_messages(m), schema_messages(dep)
    assert [p for p, _ in wrapped] == ["content." + p for p, _ in plain]


def test_values_that_are_not_plain_json_are_checked_every_time() -> None:
    m = base()
    agent(m)["modules"]["sensor"]["env"] = {"A": {"value": ("x",)}}  # a tuple: not a JSON array for jsonschema
    schema.clear_caches()
    found = schema_messages(m)
    assert len(schema._TWIN_CACHE) == 1  # $edgeHub cached, $edgeAgent not
    assert schema_messages(m) == found
    class Name(str):
        pass

    assert not schema._is_plain({Name("k"): 1}) and not schema._is_plain([("a",)]) and schema._is_plain(
        {"a": [1, 2.5, None, True, {"b": "c"}]})


def uncached_all(m: dict[str, Any]) -> list[tuple[str, str]]:
    schema.clear_caches()
    return schema_messages(m)


def test_members_found_clean_are_skipped_only_while_unchanged() -> None:
    m = base()
    assert uncached_all(m) == [] and not schema._CLEAN  # a valid twin: the compiled schema alone said so
    broken = copy.deepcopy(m)
    agent(broken)["schemaVersion"] = "1.1"
    agent(broken)["runtime"]["type"] = "rkt"  # fails: jsonschema checks the twin and remembers the clean members
    assert uncached_all(broken)
    assert schema._CLEAN  # the modules, env variables … that were clean
    modules = agent(m)["modules"]
    for i, bad in enumerate(({"restartPolicy": "sometimes"}, {"status": 1}, {"env": {"A": {"valu": "1"}}},
                             {"startupOrder": -1}, {"zz": True}, {"settings": {"image": 5}})):
        for name in list(modules)[:2]:
            m2 = copy.deepcopy(m)
            agent(m2)["modules"][name].update(bad)
            agent(m2)["modules"][name].setdefault("env", {})[f"V{i}"] = {"value": str(i)}  # a new twin each time
            got = schema_messages(m2)  # other modules come from the memo
            assert got and got == uncached_all(m2), (name, bad)
            assert schema_messages(m) == []
            assert uncached_all(broken)  # fill the memo again for the next round


def test_a_module_that_turns_clean_again() -> None:
    m = base()
    name = next(iter(agent(m)["modules"]))
    original = copy.deepcopy(agent(m)["modules"][name])
    uncached_all(m)
    agent(m)["modules"][name]["restartPolicy"] = "sometimes"
    assert schema_messages(m)
    agent(m)["modules"][name] = original
    assert schema_messages(m) == []


def test_memory_is_bounded_by_the_keys_length(monkeypatch: Any) -> None:
    monkeypatch.setattr(schema, "_CACHE_CHARS", 20_000)
    schema.clear_caches()
    m = base()
    agent(m)["runtime"]["type"] = "rkt"  # an error elsewhere: the twin goes through jsonschema, which remembers
    for i in range(40):  # 40 distinct twins, each key a few KB
        agent(m)["modules"]["sensor"]["env"] = {"N": {"value": str(i) * 50}}
        assert len(schema_messages(m)) == 1
    assert 0 < schema._chars["twin"] <= 20_000 and 0 < schema._chars["clean"] <= 20_000
    assert schema._chars["twin"] == sum(len(k[3]) for k in schema._TWIN_CACHE)
    assert schema._chars["clean"] == sum(len(k[1]) for k in schema._CLEAN)
    schema.clear_caches()
    assert schema._chars == {"clean": 0, "twin": 0} and not schema._CLEAN
