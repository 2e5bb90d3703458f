"""The inference_schema entry script both servers host in bench/score.py: named, typed inputs decoded by the
decorators (a list of rows and a scale), a small computation, a dict back."""

from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("data", StandardPythonParameterType([[1.0, 2.0, 3.0, 4.0]]))
@input_schema("scale", StandardPythonParameterType(2.0))
@output_schema(StandardPythonParameterType({"result": [20.0]}))
def run(data, scale):
    return {"result": [sum(row) * scale for row in data]}
