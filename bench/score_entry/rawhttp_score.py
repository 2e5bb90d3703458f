"""The @rawhttp entry script both servers host in bench/score.py: it reads the request itself (method, a header,
the JSON body) and answers with an AMLResponse carrying its own header."""

from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    if request.method != "POST":
        return AMLResponse("POST a JSON body", 405)
    data = request.get_json()["data"]
    return AMLResponse({"result": [x * 2 for x in data]}, 200, {"X-Rows": str(len(data))}, json_str=True)
