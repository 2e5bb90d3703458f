# inference_schema with standard Python types, several named inputs (one with a default) and request headers,
# as in Azure ML's "advanced entry script authoring" documentation.
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    global offset
    offset = 0.5


@input_schema("data", StandardPythonParameterType([[1.0, 2.0], [3.0, 4.0]]))
@input_schema("scale", StandardPythonParameterType(1.0))
@input_schema("label", StandardPythonParameterType("x"))
@output_schema(StandardPythonParameterType({"sums": [3.5, 7.5], "label": "x", "agent": "client"}))
def run(data, scale, label="none", request_headers=None):
    sums = [sum(row) * scale + offset for row in data]
    return {"sums": sums, "label": label, "agent": (request_headers or {}).get("X-Agent", "")}
