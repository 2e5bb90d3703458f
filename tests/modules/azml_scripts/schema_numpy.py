# inference_schema with a numpy input (shape and dtype enforced) and a mixed-type output sample, which swagger 2
# cannot express (only OpenAPI 3 and 3.1 are offered).
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("data", NumpyParameterType(np.array([[1.0, 2.0, 3.0]])))
@input_schema("mode", StandardPythonParameterType("sum"))
@output_schema(StandardPythonParameterType([6.0, "sum"]))
def run(data, mode="sum"):
    if mode == "array":
        return data * 2  # a numpy array: not JSON serialisable
    if mode == "dtype":
        return [str(data.dtype), list(data.shape)]
    return [*data.sum(axis=1).tolist(), mode]
