"""amlhost: hosts an Azure ML entry script (``init()``/``run()``) and answers exactly like Azure ML's own inference
server, azmlinfsrv 1.5.1 — plain, ``inference_schema`` and ``@rawhttp`` scripts, unchanged.

One package, no edgegen imports, used three ways: the inference module's HTTP server, its message path and its
``score`` direct method (modules/inference/main.py), and ``edgegen serve`` (edgegen ships this folder as the
top-level package ``amlhost``). Layers, each importing only those before it:

- ``exchange``: ``ScoreRequest`` and ``Reply``, the values everything trades in;
- ``shims``, ``aml_request``, ``aml_response``: the Azure ML request/response API scripts import;
- ``script``: loading the entry script and deciding how ``run()`` is called;
- ``wsgi``, ``inputs``, ``replies``, ``swagger``: request → arguments, result → reply, OpenAPI documents;
- ``scorer``: routes, headers and status codes, one request → one reply (synchronous);
- ``metrics``, ``http``: the aiohttp server around it (key auth, body limit, timeouts, ``/metrics``);
- ``serve``: the standalone server (``edgegen serve``).
"""

__version__ = "0.1.0"
