# An undecorated entry script, as in Azure ML's "author a scoring script" documentation: init() loads, run() takes
# the raw request text. Its input chooses what it returns, so one script covers every return type.
import json
import os
import sys

import numpy as np


def init():
    global seen
    seen = {name: os.environ.get(name) for name in ("AZUREML_MODEL_DIR", "AZUREML_ENTRY_SCRIPT", "AML_APP_ROOT")}
    seen["module"] = __name__


def run(raw_data, request_headers):
    if raw_data == "":
        return {"body": "empty"}
    data = json.loads(raw_data)
    if not isinstance(data, dict):
        return data
    kind = data.get("return", "echo")
    if kind == "env":
        return seen
    if kind == "headers":
        return {name: value for name, value in request_headers.items() if name != "Host"}
    if kind == "str":
        return "plain text é"
    if kind == "json-str":
        return json.dumps({"already": "json"})
    if kind == "none":
        return None
    if kind == "bytes":
        return b"\x00\x01"
    if kind == "numpy":
        return np.array([1.5, 2.5])
    if kind == "np-float":
        return np.float64(1.5)
    if kind == "np-int":
        return np.int64(3)
    if kind == "nan":
        return [float("nan"), float("inf")]
    if kind == "set":
        return {1, 2}
    if kind == "raise":
        raise ValueError("the model does not like this input")
    if kind == "exit":
        sys.exit(3)
    if kind == "interrupt":
        raise KeyboardInterrupt
    return {"echo": data}
