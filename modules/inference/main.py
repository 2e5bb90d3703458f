"""inference — hosts an Azure ML entry script on IoT Edge, unchanged: module messages, a direct method and HTTP.

A standalone IoT Edge module (azure-iot-device + the scoring core ``amlhost`` in this folder, which answers like Azure
ML's azmlinfsrv: plain, inference_schema and @rawhttp scripts). Environment:
  ENTRY_SCRIPT        entry script (or AZUREML_ENTRY_SCRIPT), default score.py beside this file (relative paths: to
                      this folder)
  AZUREML_MODEL_DIR   model folder, default model/ beside this file (relative paths: to this folder)
  EDGEGEN_MODELS      models the deployment pins (name:version@sha256:…): verified under AML_APP_ROOT at start
                      (modelpath.py), reported in the twin (``inference.models``); a mismatch refuses to start
  INPUT_NAME          input to score (default input1; twin desired ``inputName`` overrides)
  OUTPUT_NAME         output for results (default output1); ERROR_OUTPUT for failures (default errors)
  SCORING_PORT        HTTP port (default 5001, "off" disables); SCORING_HOST bind address (default 127.0.0.1;
                      the images set 0.0.0.0), EDGEGEN_LISTEN_ADDRESS (set by edgegen's local device on a shared
                      host network) overrides it.
                      A port already in use is logged and reported (twin ``inference.http``); messages and the
                      direct method keep working.
  SCORING_KEY         when set, /score needs ``Authorization: Bearer <key>``
  MAX_REQUEST_BYTES   largest HTTP body (default 0: no limit, as azmlinfsrv); SCORING_THREADS threads for run()
                      (default 1); SCORING_TIMEOUT_MS (default 3600000); CLIENT_TIMEOUT_SECONDS (default 60)
  REPORT_INTERVAL     seconds between twin reports of the counters (default 10); LOG_LEVEL (default INFO)
  DRAIN_SECONDS       on SIGTERM: stop taking input, score and send what was taken for up to this long (default 8)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import modelpath
from amlhost.exchange import Reply, ScoreRequest, media_type
from amlhost.http import HttpHost, HttpOptions, SettingError
from amlhost.messages import describe_failure, is_success, message_request, method_request, method_response
from amlhost.metrics import Metrics
from amlhost.scorer import Scorer
from amlhost.serve import StartError, load_scorer
from amlhost.workers import RunThreads
from azure.iot.device import Message, MethodResponse
from azure.iot.device.aio import IoTHubModuleClient
from outputs import OrderedSender, in_thread, leftover_inputs, patch_paho_tls_eof, sdk_call

HERE = Path(__file__).resolve().parent
ERROR_INPUT_CHARS = 1024
DRAIN_SECONDS = 8.0  # the runtime (docker stop, edgegen's agent) sends SIGKILL 10 s after SIGTERM
log = logging.getLogger("inference")


def resolve_path(value: str | None, default: str, base: Path) -> Path:
    """``value`` (or ``default``) as an absolute path; relative paths are taken relative to ``base``."""
    path = Path(value if value else default).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Host:
    def __init__(self, client: IoTHubModuleClient, executor: RunThreads) -> None:
        self.client = client
        self.executor = executor
        self.loop = asyncio.get_running_loop()
        self.scorer: Scorer | None = None
        self.metrics = Metrics()
        self.input_name = os.environ.get("INPUT_NAME") or "input1"
        self.output_name = os.environ.get("OUTPUT_NAME") or "output1"
        self.error_output = os.environ.get("ERROR_OUTPUT") or "errors"
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.senders: dict[str, OrderedSender] = {}  # one ordered send queue per output
        self.send_window = max(1, int(env_number("SEND_WINDOW", 64)))
        self.sender_tasks: list[asyncio.Task[None]] = []
        self.last_error: dict[str, str] | None = None
        self.models: list[dict[str, Any]] = []  # modelpath.prepare(): name, version, sha256, verified
        self.http: dict[str, Any] = {"status": "starting"}
        self.stop = asyncio.Event()  # SIGTERM / SIGINT
        self.closing = asyncio.Event()  # the drain is over
        self.current: Message | None = None  # the message the consumer is processing

    # -- SDK callbacks (SDK threads): hand over to the loop, nothing else -----------------------------------------
    def on_message(self, message: Message) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, message)
        except RuntimeError:  # the loop is closed (after shutdown): cannot happen before client.shutdown()
            print(f"inference: message {message.message_id} arrived after shutdown", file=sys.stderr)

    def on_method(self, request: Any) -> None:
        asyncio.run_coroutine_threadsafe(self.handle_method(request), self.loop)

    def on_twin_patch(self, patch: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.apply_desired, patch)

    # -- on the loop ------------------------------------------------------------------------------------------------
    def apply_desired(self, desired: dict[str, Any]) -> None:
        name = desired.get("inputName")
        if isinstance(name, str) and name and name != self.input_name:
            log.info("input name %s → %s (twin desired inputName)", self.input_name, name)
            self.input_name = name

    def record_error(self, exc: BaseException, where: str) -> None:
        self.last_error = {"type": type(exc).__name__, "message": str(exc)[:500], "where": where, "time": now()}

    async def score(self, request: ScoreRequest) -> Reply:
        assert self.scorer is not None
        return await self.loop.run_in_executor(self.executor, self.scorer.handle, request)

    async def consume(self) -> None:
        while not self.closing.is_set():
            self.current = message = await self.queue.get()
            self.metrics.messages["received"] += 1
            try:
                await self.process(message)
            except Exception:  # never let one message stop the consumer
                log.exception("unexpected failure while processing a message")
                self.metrics.messages["failed"] += 1
            finally:
                self.current = None

    async def process(self, message: Message) -> None:
        body = message.data if isinstance(message.data, bytes) else str(message.data).encode()
        carried = {k: v for k, v in message.custom_properties.items() if not k.startswith("$.")}
        if message.input_name != self.input_name:
            await self.fail(message, body, carried, "WrongInput",
                            f"message arrived on input {message.input_name!r}; this module scores input "
                            f"{self.input_name!r} (INPUT_NAME / twin desired inputName)")
            return
        reply = await self.score(message_request(body, message.content_type))
        if not is_success(reply):
            kind, text = describe_failure(reply)
            log.warning("message %s failed (%d): %s: %s", message.message_id, reply.status, kind, text)
            await self.fail(message, body, carried, kind, text, reply.status)
            return
        content_type = reply.content_type or "application/octet-stream"
        media = media_type(content_type)
        textual = media.startswith("text/") or media == "application/json" or media.endswith("+json")
        out = Message(reply.body, content_encoding="utf-8" if textual else None, content_type=content_type)
        out.custom_properties.update(carried)
        out.correlation_id = message.message_id
        await self.send_async(out, self.output_name, "scored")

    async def fail(self, message: Message, body: bytes, carried: dict[str, str], kind: str, error: str,
                   status: int | None = None) -> None:
        self.last_error = {"type": kind, "message": error[:500], "where": f"input {message.input_name}", "time": now()}
        text = body.decode("utf-8", errors="replace")
        report = {"error": kind, "message": error, "status": status, "input": text[:ERROR_INPUT_CHARS],
                  "inputTruncated": len(text) > ERROR_INPUT_CHARS, "inputName": message.input_name,
                  "messageId": message.message_id, "time": now()}
        out = Message(json.dumps(report), content_encoding="utf-8", content_type="application/json")
        out.custom_properties.update(carried)
        out.correlation_id = message.message_id
        await self.send_async(out, self.error_output, "failed")

    async def send_async(self, out: Message, output: str, outcome: str) -> None:
        """Hand over to the output's ordered sender; the outcome is counted when the broker acks."""
        sender = self.senders.get(output)
        if sender is None:
            sender = self.senders[output] = OrderedSender(self.client, output, self.count_sent, self.count_rejected,
                                                          window=self.send_window)
            self.sender_tasks.append(asyncio.ensure_future(sender.run()))
        sender.put(out, outcome)

    def count_sent(self, outcome: str) -> None:
        self.metrics.messages[outcome] += 1

    def count_rejected(self) -> None:
        self.metrics.messages["failed"] += 1

    def unsent(self) -> int:
        return sum(len(s.backlog()) for s in self.senders.values())

    async def drain(self, drain_seconds: float) -> None:
        """SIGTERM: take no new input; score and send what was taken, for at most ``drain_seconds``."""
        deadline = time.monotonic() + drain_seconds
        log.info("stopping: taking no new input; %d message(s) to score and %d to send (up to %g s)",
                 self.queue.qsize() + int(self.current is not None), self.unsent(), drain_seconds)
        try:  # unsubscribe; what the broker still has for us waits in edgeHub for the next run
            await in_thread(lambda: setattr(self.client, "on_message_received", None), max(0.5, drain_seconds))
        except Exception as exc:
            log.warning("could not unsubscribe from the inputs (%s: %s); finishing what was taken anyway",
                        type(exc).__name__, exc)
        while True:
            for message in leftover_inputs(self.client):
                self.queue.put_nowait(message)
            idle = self.queue.empty() and self.current is None and not self.unsent()
            if idle or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)

    def account(self) -> None:
        """After shutdown: say exactly what was taken and neither scored nor sent."""
        for message in leftover_inputs(self.client):
            self.queue.put_nowait(message)
        unscored = ([self.current] if self.current is not None else []) + list(self.queue._queue)  # type: ignore
        if unscored:
            log.error("stopped with %d message(s) taken but not scored: %s", len(unscored),
                      ", ".join(str(m.message_id) for m in unscored))
        for output, sender in self.senders.items():
            left = sender.backlog()
            if left:
                log.error("stopped with %d message(s) not sent to output %s (edgeHub did not take them): %s",
                          len(left), output, ", ".join(str(i.message.correlation_id) for i in left))
        if not unscored and not self.unsent():
            log.info("drained: every message taken was scored and sent")

    async def handle_method(self, request: Any) -> None:
        if request.name != "score":
            status, payload = 404, {"error": "UnknownMethod", "message": f"no method {request.name!r}; try 'score'"}
        else:
            reply = await self.score(method_request(request.payload))
            status, payload = method_response(reply)
            if is_success(reply):
                self.metrics.methods["ok"] += 1
            else:
                self.metrics.methods["failed"] += 1
                if reply.error is not None:
                    self.record_error(reply.error, "method score")
        try:
            await self.client.send_method_response(MethodResponse.create_from_method_request(request, status,
                                                                                             payload))
        except Exception as exc:
            log.warning("method %s: could not send the response: %s", request.name, exc)

    def reported(self, status: str) -> dict[str, Any]:
        m = self.metrics
        http_errors = sum(n for (path, code), n in m.requests.items() if path == "/score" and code >= 400)
        return {"inference": {
            "status": status, "modelVersion": self.scorer.script.model_version() if self.scorer else None,
            "entryScript": self.scorer.script.path.name if self.scorer else None,
            "scriptKind": self.scorer.script.kind.value if self.scorer else None, "inputName": self.input_name,
            "models": self.models,
            "counters": {"received": m.messages["received"], "scored": m.messages["scored"],
                         "failed": m.messages["failed"], "httpRequests": sum(
                             n for (path, _), n in m.requests.items() if path == "/score"),
                         "httpErrors": http_errors, "methodCalls": sum(m.methods.values())},
            "http": self.http, "lastError": self.last_error}}

    async def report(self, status: str = "running", timeout: float = 10) -> None:
        try:
            await sdk_call(self.client.patch_twin_reported_properties(self.reported(status)), timeout)
        except Exception as exc:
            log.warning("could not report twin properties: %s", exc)

    async def reporter(self, interval: float) -> None:
        """Until SIGTERM; stopped by the event, never cancelled inside an SDK call."""
        last: Any = None
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), interval)
                return
            except TimeoutError:
                pass
            current = self.reported("running")
            if current != last:
                await self.report()
                last = current


def env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"inference: environment variable {name}={raw!r} is not a number") from None


async def serve_http(host: Host) -> HttpHost | None:
    port_raw = os.environ.get("SCORING_PORT", "5001").strip().lower()
    if port_raw in ("off", "none", "disabled"):
        host.http = {"status": "off"}
        return None
    assert host.scorer is not None
    server = HttpHost(host.scorer, host.executor, HttpOptions.from_environ(), host.metrics,
                      on_error=lambda e: host.record_error(e, "http /score"))
    # on a shared host network (edgegen's process mode, a container on the host network) the runtime says where to
    # listen, over the image's SCORING_HOST=0.0.0.0 (meant for a container's own network namespace)
    bind = os.environ.get("EDGEGEN_LISTEN_ADDRESS") or os.environ.get("SCORING_HOST") or "127.0.0.1"
    try:
        await server.start(bind, int(port_raw))
    except OSError as exc:  # a busy port (a laptop running something else on 5001) must not stop MQTT scoring
        await server.close()
        error = (f"cannot listen on {bind}:{port_raw} ({exc.strerror or exc}); set SCORING_PORT to a free port "
                 f"(or SCORING_PORT=off)")
        log.error("HTTP scoring is off: %s. Module messages and the direct method 'score' keep working.", error)
        host.http = {"status": "error", "error": error, "host": bind, "port": int(port_raw)}
        return None
    host.http = {"status": "serving", "url": f"http://{bind}:{port_raw}/score"}
    log.info("HTTP scoring on http://%s:%s/score", bind, port_raw)
    return server


async def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    script = resolve_path(os.environ.get("ENTRY_SCRIPT") or os.environ.get("AZUREML_ENTRY_SCRIPT"), "score.py", HERE)
    try:
        HttpOptions.from_environ()
    except SettingError as exc:
        log.error("%s; exiting", exc)
        return 2
    executor = RunThreads(max(1, int(env_number("SCORING_THREADS", 1))))
    patch_paho_tls_eof()
    client = IoTHubModuleClient.create_from_edge_environment()
    try:
        await client.connect()
    except Exception as exc:
        log.error("cannot connect to edgeHub (%s: %s); exiting so the restart policy applies", type(exc).__name__, exc)
        await client.shutdown()
        return 1
    host = Host(client, executor)
    drain_seconds = env_number("DRAIN_SECONDS", DRAIN_SECONDS)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, host.stop.set)
    tasks: list[asyncio.Task[None]] = []
    runner = None
    try:
        try:
            twin = await sdk_call(client.get_twin(), 30)
            host.apply_desired(twin.get("desired", {}))
        except TimeoutError:
            log.warning("no twin reply within 30 s; starting with the environment's settings")
        try:
            host.models = modelpath.prepare()  # may set AZUREML_MODEL_DIR from the layout
        except modelpath.ModelMismatch as exc:
            log.error("refusing to serve models that differ from the deployment's: %s", exc)
            host.record_error(exc, "models")
            await host.report("modelMismatch")
            return 1
        model_dir = resolve_path(os.environ.get("AZUREML_MODEL_DIR"), "model", HERE)
        log.info("loading %s with AZUREML_MODEL_DIR=%s", script, model_dir)
        try:
            host.scorer = await loop.run_in_executor(executor, load_scorer, script, model_dir)
        except StartError as exc:
            log.error("%s; exiting so the restart policy applies\n%s", exc.message, exc.traceback)
            host.record_error(exc.cause or exc, "init")
            if exc.cause is None:
                host.last_error["message"] = exc.message[:500]  # type: ignore[index]
            host.last_error["traceback"] = exc.traceback[-2000:]  # type: ignore[index]
            await host.report("initFailed")
            return 1
        # Handler setters block until the subscription is acknowledged: keep them off the loop.
        await loop.run_in_executor(None, setattr, client, "on_twin_desired_properties_patch_received",
                                   host.on_twin_patch)
        await loop.run_in_executor(None, setattr, client, "on_method_request_received", host.on_method)
        await loop.run_in_executor(None, setattr, client, "on_message_received", host.on_message)
        runner = await serve_http(host)
        tasks = [asyncio.ensure_future(host.consume()),
                 asyncio.ensure_future(host.reporter(env_number("REPORT_INTERVAL", 10.0)))]
        await host.report()
        log.info("ready: %s (%s run()), model %s, scoring input %s → output %s", script.name,
                 host.scorer.script.kind.value, host.scorer.script.model_version(), host.input_name, host.output_name)
        await host.stop.wait()
        await host.drain(drain_seconds)
        host.closing.set()
        for sender in host.senders.values():
            sender.closing.set()
        await host.report("stopped", timeout=1)
    finally:
        host.stop.set()
        host.closing.set()
        for sender in host.senders.values():
            sender.closing.set()
        if runner is not None:
            await runner.close()
        try:  # completes (or cancels) every SDK operation still pending, so nothing is left to cancel below
            await sdk_call(client.shutdown(), 10)
        except Exception as exc:
            log.warning("shutdown: %s", exc)
        everything = [*tasks, *host.sender_tasks]
        if everything:
            await asyncio.wait(everything, timeout=2)
        for task in everything:
            task.cancel()  # only ever waiting on the queue, run() or a timer by now
        executor.shutdown(wait=False, cancel_futures=True)
    host.account()
    log.info("stopped: %s", host.reported("stopped")["inference"]["counters"])
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
