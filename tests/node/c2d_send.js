// Send cloud-to-device messages with the Node service SDK (azure-iothub Client.send, AMQP), after reading each
// target device with Registry.get (REST): both from the hub connection string as `edgegen hub serve` prints it.
//   CONNECTION_STRING=<hub connection string> node c2d_send.js DEVICE_ID:MESSAGE_ID:BODY ...   (the key: not on argv)
// Prints {"sent": [messageId, ...]} on success; the error and exit code 1 otherwise.
'use strict';
const { Client, Registry } = require('azure-iothub');
const { Message } = require('azure-iot-common');

async function main() {
  const connectionString = process.env.CONNECTION_STRING;
  const targets = process.argv.slice(2);
  const registry = Registry.fromConnectionString(connectionString);
  const client = Client.fromConnectionString(connectionString);
  await client.open();
  const sent = [];
  for (const target of targets) {
    const [deviceId, messageId, ...rest] = target.split(':');
    const found = await registry.get(deviceId);
    if (found.responseBody.deviceId !== deviceId) throw new Error(`Registry.get(${deviceId}) answered another device`);
    const message = new Message(rest.join(':'));
    message.messageId = messageId;
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.ack = 'full';
    message.properties.add('sender', 'node');
    await client.send(deviceId, message);
    sent.push(messageId);
  }
  await client.close();
  console.log(JSON.stringify({ sent }));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
