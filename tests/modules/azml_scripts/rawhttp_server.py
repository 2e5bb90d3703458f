# A @rawhttp script importing from azmlinfsrv's own path (azureml_inference_server_http.api); served without a
# model folder, so it shows what a script sees when AZUREML_MODEL_DIR is not set.
import os

from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse


def init():
    global seen
    seen = {name: os.environ.get(name) for name in ("AZUREML_MODEL_DIR", "AZUREML_ENTRY_SCRIPT", "AML_APP_ROOT")}


@rawhttp
def run(request):
    if request.args.get("env"):
        return AMLResponse(seen, 200, json_str=True)
    return AMLResponse(request.get_data(), 200, {"Content-Type": "application/octet-stream", "X-Length":
                                                 str(len(request.get_data()))})
