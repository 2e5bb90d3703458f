# inference_schema with a pandas DataFrame input (records orientation, the default).
import pandas as pd
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

SAMPLE = pd.DataFrame({"temperature": [20.5], "pressure": [4.4], "site": ["a"]})


def init():
    pass


@input_schema("frame", PandasParameterType(SAMPLE))
@input_schema("mode", StandardPythonParameterType("summary"))
@output_schema(StandardPythonParameterType({"rows": 1, "mean_temperature": 20.5, "sites": ["a"]}))
def run(frame, mode="summary"):
    if mode == "frame":
        return frame  # a DataFrame: not JSON serialisable
    return {"rows": len(frame), "mean_temperature": float(frame["temperature"].mean()),
            "sites": sorted(frame["site"].unique().tolist())}
