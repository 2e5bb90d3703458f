// Receive cloud-to-device messages with the Node device SDK over MQTT (azure-iot-device + azure-iot-device-mqtt),
// completing each, from a device connection string as `edgegen hub device create` prints it.
//   CONNECTION_STRING=<device connection string> node c2d_receive.js COUNT   (a key never goes on argv: ps shows it)
// Prints READY once connected, then a JSON list of the COUNT messages; exits 2 after 60 s without them.
'use strict';
const { Client } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const connectionString = process.env.CONNECTION_STRING;
const [count] = process.argv.slice(2);
const client = Client.fromConnectionString(connectionString, Mqtt);
const received = [];
const timer = setTimeout(() => {
  console.error(`timed out with ${received.length} of ${count} messages`);
  process.exit(2);
}, 60000);

client.on('message', (msg) => {
  received.push({
    messageId: msg.messageId,
    data: msg.data.toString(),
    contentType: msg.contentType,
    properties: Object.fromEntries(msg.properties.propertyList.map((p) => [p.key, p.value])),
  });
  client.complete(msg, (err) => {
    if (err) {
      console.error(`complete failed: ${err}`);
      process.exit(1);
    }
    if (received.length >= Number(count)) {
      clearTimeout(timer);
      console.log(JSON.stringify(received));
      client.close(() => process.exit(0));
    }
  });
});
client.on('error', (err) => {
  console.error(`device client error: ${err}`);
  process.exit(1);
});
client.open().then(() => console.log('READY')).catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
