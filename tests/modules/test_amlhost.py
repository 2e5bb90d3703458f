"""The scoring core's pure parts: the entry-script contract, request decoding, result encoding, ids, swagger, and
the message/method faces. Request-level behaviour against azmlinfsrv itself is in test_against_azmlinfsrv.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from amlhost.exchange import Headers, Reply
from amlhost.inputs import query_parameters
from amlhost.messages import describe_failure, message_request, method_request, method_response
from amlhost.replies import encode_result
from amlhost.script import InputKind
from amlhost.serve import StartError, load_scorer
from amlhost.swagger import Swagger, SwaggerError
from amlhost.wsgi import header_dict
from hypothesis import given
from hypothesis import strategies as st

from tests.modules.amlhost_support import isolated, reply_json, request, scorer_for
from tests.support.profiles import PROPERTY

PLAIN = """
import json
def init():
    pass
def run(raw_data):
    data = json.loads(raw_data) if raw_data else None
    return {"got": data}
"""
SCHEMA = """
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema
def init():
    pass
@input_schema("rows", StandardPythonParameterType([[1.0, 2.0]]))
@input_schema("factor", StandardPythonParameterType(1.0))
@output_schema(StandardPythonParameterType([3.0]))
def run(rows, factor=1.0):
    return [sum(r) * factor for r in rows]
"""
RAW = """
from azureml.contrib.services.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse
import azureml.contrib.services.aml_request as module_form
def init():
    pass
@rawhttp
def run(request):
    return AMLResponse({"method": request.method, "args": request.args.to_dict(),
                        "data": request.get_data(as_text=True), "same": module_form.rawhttp is rawhttp},
                       207, {"X-Two": "a, b"}, json_str=True)
"""

BOTH = """
from azureml.contrib.services.aml_request import rawhttp
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema
def init():
    pass
@rawhttp
@input_schema("request", StandardPythonParameterType("x"))
def run(request):
    return request
"""


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    with isolated():
        yield tmp_path


# -- the contract -----------------------------------------------------------------------------------------------
def test_plain_script_gets_text_and_get_gets_query_json(folder: Path) -> None:
    scorer = scorer_for(folder, PLAIN)
    assert scorer.script.kind is InputKind.PLAIN
    reply = scorer.handle(request(body=b'{"a": 1}', headers=(("Content-Type", "text/plain"),)))
    assert reply.status == 200 and reply_json(reply) == {"got": {"a": 1}}
    reply = scorer.handle(request("GET", "/score?a=1&a=2&b=x&c=null&d="))
    assert reply_json(reply) == {"got": {"a": [1, 2], "b": "x", "c": None, "d": ""}}
    assert scorer.handle(request(body=b"\xff")).status == 400
    assert scorer.handle(request("HEAD")).status == 405
    options = scorer.handle(request("OPTIONS"))
    assert options.status == 200 and options.body == b"" and options.content_type == "text/html; charset=utf-8"


def test_schema_script_gets_named_converted_arguments(folder: Path) -> None:
    scorer = scorer_for(folder, SCHEMA)
    assert scorer.script.kind is InputKind.SCHEMA and scorer.script.parameters == ("rows", "factor")
    ok = scorer.handle(request(body=json.dumps({"rows": [[1, 2], [3, 4]], "factor": 2}).encode()))
    assert ok.status == 200 and reply_json(ok) == [6, 14]
    assert reply_json(scorer.handle(request(body=b'{"rows": [[1.5]]}'))) == [1.5]  # the default
    cases = {b'{"factor": 2}': (400, "A value is not provided for the 'rows' parameter."),
             b"[1]": (400, "POST body should be a JSON dictionary."),
             b"": (400, "POST body is empty. Expecting a JSON dictionary."),
             b"{": (400, "POST body could not be decoded as JSON: Expecting property name enclosed in double quotes: "
                         "line 1 column 2 (char 1)")}
    for body, (status, message) in cases.items():
        reply = scorer.handle(request(body=body))
        assert (reply.status, reply_json(reply)) == (status, {"message": message}), body
    wrong_type = scorer.handle(request(body=b'{"rows": [[1]], "factor": "x"}'))
    assert wrong_type.status == 500 and wrong_type.header("x-ms-run-function-failed") == "True"
    unsupported = scorer.handle(request(body=b'{"rows": [[1]]}', headers=(("Content-Type", "text/plain"),)))
    assert unsupported.status == 415
    assert reply_json(scorer.handle(request("GET", "/score?rows=%5B%5B2%5D%5D"))) == [2]


def test_rawhttp_script_through_both_import_paths(folder: Path) -> None:
    scorer = scorer_for(folder, RAW)
    assert scorer.script.kind is InputKind.RAW
    reply = scorer.handle(request("POST", "/score?x=1", b"body text"))
    assert reply.status == 207 and reply_json(reply) == {"method": "POST", "args": {"x": "1"}, "data": "body text",
                                                           "same": True}
    assert [v for k, v in reply.headers if k == "X-Two"] == ["a", "b"]
    assert reply.header("x-ms-run-fn-exec-ms") is not None
    assert reply_json(scorer.handle(request("OPTIONS")))["method"] == "OPTIONS"  # rawhttp gets every method


@pytest.mark.parametrize(("source", "message"), [
    ("def init(): pass\ndef run(*args): pass\n", "positional-only arguments, *args, or **kwargs"),
    ("def init(): pass\ndef run(**kw): pass\n", "positional-only arguments, *args, or **kwargs"),
    ("def init(): pass\ndef run(a, /): pass\n", "positional-only arguments, *args, or **kwargs"),
    ("def init(): pass\ndef run(): pass\n", "needs to accept an argument for input data"),
    ("def init(): pass\ndef run(request_headers): pass\n", 'other than "request_headers"'),
    ("def run(x): pass\n", "does not have a init() function"),
    ("def init(): pass\n", "does not have a run() function"),
    (BOTH, "both @rawhttp and @input_schema"),
])
def test_scripts_breaking_the_contract_are_refused(folder: Path, source: str, message: str) -> None:
    with pytest.raises(StartError, match="run|init") as caught:
        scorer_for(folder, source)
    assert message in caught.value.message


def test_failing_import_and_init_carry_the_exception(folder: Path) -> None:
    with pytest.raises(StartError) as caught:
        scorer_for(folder, "raise ImportError('no module named sklearn')\n")
    assert isinstance(caught.value.cause, ImportError) and "Traceback" in caught.value.traceback
    with pytest.raises(StartError, match=r"init\(\) of score.py failed: KeyError") as caught:
        scorer_for(folder, "def init():\n    raise KeyError('weights')\ndef run(x):\n    return x\n")
    assert isinstance(caught.value.cause, KeyError)
    with pytest.raises(StartError, match="does not exist"):
        load_scorer(folder / "missing.py")


def test_driver_module_run_is_called(folder: Path) -> None:
    (folder / "real_score.py").write_text("def init(): pass\ndef run(data):\n    return {'real': data}\n")
    scorer = scorer_for(folder, "import real_score as driver_module\ninit = driver_module.init\n"
                                "def run(x):\n    return 'driver'\n")
    assert reply_json(scorer.handle(request(body=b"7"))) == {"real": "7"}


def test_environment_without_model_dir(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    script = folder / "env.py"
    script.write_text("import os\ndef init(): pass\n"
                      "def run(x):\n    return [os.environ.get('AZUREML_MODEL_DIR'), os.environ['AML_APP_ROOT'],"
                      " os.environ['AZUREML_ENTRY_SCRIPT'], __name__]\n")
    scorer = load_scorer(script, None, app_root=folder)
    assert reply_json(scorer.handle(request(body=b"1"))) == [None, str(folder), str(script.resolve()),
                                                              "entry_module"]


def test_two_schema_scripts_in_one_process_do_not_share_schemas(folder: Path) -> None:
    first = scorer_for(folder, SCHEMA, "one.py")
    second = scorer_for(folder, SCHEMA.replace('"factor"', '"weight"').replace("factor=", "weight=")
                        .replace("* factor", "* weight"), "two.py")
    assert first.script.parameters == ("rows", "factor") and second.script.parameters == ("rows", "weight")
    swagger = json.loads(second.swagger.get("3"))
    assert set(swagger["components"]["schemas"]["ServiceInput"]["properties"]) == {"rows", "weight"}


# -- encoding ---------------------------------------------------------------------------------------------------
def test_encode_result_as_azmlinfsrv() -> None:
    assert encode_result({"a": "é"})[0].body == b'{"a": "\\u00e9"}'
    assert encode_result('{"a": 1}')[0].body == b'"{\\"a\\": 1}"'  # a JSON string is encoded again
    assert encode_result(None)[0].body == b"{}"
    for bad in (b"x", {1}, float("nan"), [float("inf")], object()):
        reply, ok = encode_result(bad)
        assert not ok and reply.status == 500 and reply.header("x-ms-run-function-failed") == "False"
        assert "run() returned" in reply_json(reply)["message"]  # type: ignore[index]
    loop: list[object] = []
    loop.append(loop)
    assert "cannot be sent as JSON" in reply_json(encode_result(loop)[0])["message"]  # type: ignore[index]


def test_aml_response_status_headers_and_failures() -> None:
    from amlhost.aml_response import AMLResponse

    reply, ok = encode_result(AMLResponse("down", 503, {"Retry-After": "5"}))
    assert ok and reply.status == 503 and reply.body == b"down"
    assert reply.header("x-ms-run-function-failed") == "True" and reply.header("Retry-After") == "5"
    assert reply.content_type == "text/html; charset=utf-8"
    reply, _ = encode_result(AMLResponse(b"\x89PNG", 200, {"Content-Type": "image/png"}))
    assert [v for k, v in reply.headers if k.lower() == "content-type"] == ["image/png"]
    assert encode_result(AMLResponse(None, 204))[0].body == b"{}"


# -- ids, routes, swagger ---------------------------------------------------------------------------------------
def test_request_ids(folder: Path) -> None:
    scorer = scorer_for(folder, PLAIN)

    def ids(*headers: tuple[str, str]) -> tuple[int, str | None, str | None, str | None]:
        reply = scorer.handle(request("GET", "/", headers=headers))
        return (reply.status, reply.header("x-request-id"), reply.header("x-ms-request-id"),
                reply.header("x-ms-client-request-id"))

    assert ids(("x-request-id", "r")) == (200, "r", "r", None)
    assert ids(("x-request-id", "r"), ("x-ms-client-request-id", "c")) == (200, "r", "c", "c")
    assert ids(("x-request-id", "r"), ("x-ms-request-id", "l")) == (200, "r", "l", "l")
    assert ids(("x-request-id", "r"), ("x-ms-request-id", "l"), ("x-ms-client-request-id", "c")) == (
        200, "r", "l", "c")
    assert ids(("x-request-id", "r" * 101)) == (431, None, None, None)
    assert ids(("x-request-id", "r"), ("x-ms-client-request-id", "c" * 101)) == (431, "r", None, None)
    status, generated, legacy, _ = ids()
    assert status == 200 and generated == legacy and len(generated or "") == 36


def test_swagger_versions_and_user_files(folder: Path) -> None:
    scorer = scorer_for(folder, SCHEMA)
    two = json.loads(scorer.swagger.get(None))
    assert two["swagger"] == "2.0" and two["definitions"]["ServiceInput"]["example"] == {"rows": [[1.0, 2.0]],
                                                                                           "factor": 1.0}
    assert json.loads(scorer.swagger.get("3.1"))["openapi"] == "3.1.0"
    assert scorer.swagger.get("2.0") == scorer.swagger.get(None)
    with pytest.raises(SwaggerError, match=r"Swagger version \[4\] is not valid. Supported versions: \[2, 3, 3.1\]"):
        scorer.swagger.get("4")
    (folder / "swagger3.json").write_text('{"openapi": "3.0.0", "mine": true}')
    assert json.loads(Swagger(scorer.script.run, folder).get("3")) == {"openapi": "3.0.0", "mine": True}
    (folder / "swagger.json").write_text("{broken")
    with pytest.raises(SwaggerError, match="swagger.json: cannot be read as JSON"):
        Swagger(scorer.script.run, folder)


# -- messages and methods ---------------------------------------------------------------------------------------
def test_message_and_method_faces(folder: Path) -> None:
    scorer = scorer_for(folder, SCHEMA)
    reply = scorer.handle(message_request(b'{"rows": [[1]]}', None))  # no content type: taken as JSON
    assert reply.status == 200 and method_response(reply) == (200, [1])
    failed = scorer.handle(method_request({"factor": 1}))
    assert method_response(failed) == (400, {"error": "BadInput",
                                             "message": "A value is not provided for the 'rows' parameter."})
    raised = scorer.handle(method_request({"rows": "no"}))
    assert describe_failure(raised)[0] == "TypeError" or describe_failure(raised)[0] == "ValueError"
    assert describe_failure(Reply(503, [], b'{"message": "down"}')) == ("HTTP503", "down")
    assert method_response(Reply(200, [("Content-Type", "image/png")], b"\x00")) == (200, {"base64": "AA=="})


# -- fuzzing ----------------------------------------------------------------------------------------------------
@PROPERTY
@given(st.text(max_size=200))
def test_query_parameters_never_fail(query: str) -> None:
    parsed = query_parameters(query)
    assert all(isinstance(k, str) for k in parsed)


@PROPERTY
@given(st.lists(st.tuples(st.text(alphabet="abcXYZ-_", min_size=1, max_size=12), st.text(max_size=20)),
                max_size=12))
def test_header_dict_never_fails_and_drops_underscores(headers: list[tuple[str, str]]) -> None:
    found = header_dict(Headers(headers))
    assert all("_" not in name for name in found)


@pytest.fixture(scope="module")
def fuzz_scorers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[object]]:
    with isolated():
        folder = tmp_path_factory.mktemp("fuzz")
        yield [scorer_for(folder, PLAIN, "plain.py"), scorer_for(folder, SCHEMA, "schema.py"),
               scorer_for(folder, RAW, "raw.py")]


@PROPERTY
@given(method=st.sampled_from(["GET", "POST", "OPTIONS", "HEAD", "PUT", "DELETE"]),
       path=st.sampled_from(["/", "/score", "/swagger.json", "/x", "/score/", "/sc%6Fre"]),
       query=st.text(max_size=60), body=st.binary(max_size=300),
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                     "multipart/form-data; boundary=b", "application/ld+json", ""]),
       which=st.integers(0, 2))
def test_any_request_gets_a_reply_never_an_exception(fuzz_scorers: list[object], method: str, path: str, query: str,
                                                     body: bytes, content_type: str, which: int) -> None:
    scorer = fuzz_scorers[which]
    headers = (("Content-Type", content_type),) if content_type else ()
    reply = scorer.handle(request(method, f"{path}?{query}" if query else path, body, headers))  # type: ignore[attr-defined]
    assert 200 <= reply.status < 600
    if reply.content_type == "application/json" and reply.status != 207:
        json.loads(reply.body)
