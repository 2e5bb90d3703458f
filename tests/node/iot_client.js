// A Node.js Azure IoT SDK client driven by JSON lines, for edgegen's tests (tests/support/nodeclient.py).
//
// argv[2] says how to connect:
//   "module-env"      ModuleClient.fromEnvironment(Mqtt) (IOTEDGE_* workload variables, or EdgeHubConnectionString)
//   "module-cs"       ModuleClient.fromConnectionString(process.env.CONNECTION_STRING, Mqtt)
//   "device-cs"       Client.fromConnectionString(process.env.CONNECTION_STRING, Mqtt)
// CA_FILE (optional) is the CA the server's certificate chains to.
//
// stdin: one command per line, {"id": n, "op": ..., ...}; stdout: one JSON object per line, either a reply
// {"id": n, "ok": true, "result": ...} / {"id": n, "ok": false, "error": "..."} or an event {"event": ...}.
'use strict';

const fs = require('fs');
const readline = require('readline');
const { ModuleClient, Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const mode = process.argv[2];
let client = null;
let twin = null;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function messageView(msg) {
  const props = {};
  for (const p of msg.properties.propertyList) props[p.key] = p.value;
  return {
    data: Buffer.from(msg.data).toString('utf8'),
    messageId: msg.messageId === undefined ? null : msg.messageId,
    correlationId: msg.correlationId === undefined ? null : msg.correlationId,
    contentType: msg.contentType === undefined ? null : msg.contentType,
    contentEncoding: msg.contentEncoding === undefined ? null : msg.contentEncoding,
    properties: props,
  };
}

function buildMessage(spec) {
  const msg = new Message(typeof spec.data === 'string' ? spec.data : JSON.stringify(spec.data));
  if (spec.messageId) msg.messageId = spec.messageId;
  if (spec.correlationId) msg.correlationId = spec.correlationId;
  if (spec.contentType) msg.contentType = spec.contentType;
  if (spec.contentEncoding) msg.contentEncoding = spec.contentEncoding;
  for (const [k, v] of Object.entries(spec.properties || {})) msg.properties.add(k, v);
  return msg;
}

async function connect() {
  const ca = process.env.CA_FILE ? fs.readFileSync(process.env.CA_FILE, 'utf8') : null;
  if (mode === 'module-env') {
    client = await ModuleClient.fromEnvironment(Mqtt);
  } else if (mode === 'module-cs') {
    client = ModuleClient.fromConnectionString(process.env.CONNECTION_STRING, Mqtt);
  } else if (mode === 'device-cs') {
    client = Client.fromConnectionString(process.env.CONNECTION_STRING, Mqtt);
  } else {
    throw new Error('unknown mode ' + mode);
  }
  if (ca) await client.setOptions({ ca: ca });
  client.on('error', (err) => emit({ event: 'error', error: String(err) }));
  client.on('disconnect', () => emit({ event: 'disconnect' }));
  await client.open();
}

const ops = {
  async sendEvent(cmd) {
    await client.sendEvent(buildMessage(cmd.message));
    return null;
  },
  async sendOutputEvent(cmd) {
    await client.sendOutputEvent(cmd.output, buildMessage(cmd.message));
    return null;
  },
  async enableInputs() {
    client.on('inputMessage', (inputName, msg) => {
      emit({ event: 'input', input: inputName, message: messageView(msg) });
      client.complete(msg, () => {});
    });
    return null;
  },
  async enableC2D() {
    client.on('message', (msg) => {
      emit({ event: 'c2d', message: messageView(msg) });
      client.complete(msg, () => {});
    });
    return null;
  },
  async getTwin() {
    if (!twin) {
      twin = await client.getTwin();
      twin.on('properties.desired', (delta) => emit({ event: 'desired', patch: delta }));
    }
    return { desired: twin.properties.desired, reported: twin.properties.reported };
  },
  async patchReported(cmd) {
    if (!twin) await ops.getTwin();
    await new Promise((resolve, reject) => twin.properties.reported.update(cmd.patch, (err) => (err ? reject(err) : resolve())));
    return null;
  },
  async onMethod(cmd) {
    const handler = (request, response) => {
      emit({ event: 'method', name: request.methodName, payload: request.payload === undefined ? null : request.payload });
      if (cmd.silent) return;
      response.send(cmd.status || 200, { echo: request.payload === undefined ? null : request.payload, by: mode },
        (err) => { if (err) emit({ event: 'error', error: 'method response: ' + err }); });
    };
    if (mode === 'device-cs') client.onDeviceMethod(cmd.name, handler);
    else client.onMethod(cmd.name, handler);
    return null;
  },
  async invokeMethod(cmd) {
    try {
      const result = await client.invokeMethod(cmd.deviceId, cmd.moduleId, cmd.params);
      return { status: result.status, payload: result.payload === undefined ? null : result.payload };
    } catch (err) {
      const response = err.response || {};
      return { error: err.name || String(err), statusCode: response.statusCode || null,
               body: err.responseBody === undefined ? null : String(err.responseBody) };
    }
  },
  async close() {
    await client.close();
    return null;
  },
};

async function main() {
  try {
    await connect();
  } catch (err) {
    emit({ event: 'connect-failed', error: String(err && err.message ? err.message : err) });
    process.exit(2);
  }
  emit({ event: 'ready' });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (err) {
      emit({ event: 'error', error: 'bad command: ' + line });
      return;
    }
    try {
      const result = await ops[cmd.op](cmd);
      emit({ id: cmd.id, ok: true, result: result });
    } catch (err) {
      emit({ id: cmd.id, ok: false, error: String(err && err.message ? err.message : err) });
    }
  });
  rl.on('close', async () => {
    try { await client.close(); } catch (err) { /* exiting anyway */ }
    process.exit(0);
  });
}

main();
