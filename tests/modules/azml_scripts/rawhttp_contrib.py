# A @rawhttp script importing from the SDK v1 path (azureml.contrib.services), as Azure ML's binary-data and
# raw-HTTP samples do: it reads the method, query, headers, body, JSON, form and files, and answers with AMLResponse.
from azureml.contrib.services.aml_request import AMLRequest, rawhttp  # noqa: F401
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    action = request.args.get("action", "")
    if request.method == "GET":
        return {"method": "GET", "args": request.args.to_dict(flat=False), "full_path": request.full_path,
                "path": request.path}
    if request.method != "POST":
        return AMLResponse(f"method {request.method}", 200)
    if action == "status":
        return AMLResponse({"made": "here"}, 201, {"X-Made-By": "script", "X-Multi": "a, b"}, json_str=True)
    if action == "text":
        return AMLResponse("plain text é", 200)
    if action == "binary":
        return AMLResponse(b"\x89PNG\r\n\x1a\n", 200, {"Content-Type": "image/png"})
    if action == "fail":
        return AMLResponse("model unavailable", 503)
    if action == "none":
        return AMLResponse(None, 202)
    if action == "raise":
        raise RuntimeError("raw boom")
    if request.files or request.form:
        files = {name: [f.filename, len(f.read()), f.mimetype] for name, f in request.files.items()}
        return {"files": files, "form": request.form.to_dict()}
    return {"method": "POST", "json": request.get_json(silent=True), "text": request.get_data(as_text=True),
            "content_type": request.content_type, "length": request.content_length, "is_json": request.is_json,
            "headers": {name: value for name, value in request.headers.items() if name.startswith("X-")}}
