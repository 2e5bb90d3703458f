// The Node.js service SDK (azure-iothub) against the hub stand-in: Registry CRUD, bulk, twins, query with
// continuation tokens, modules, configurations, statistics, errors. Reads IOTHUB_CONNECTION_STRING; the CA
// comes from NODE_EXTRA_CA_CERTS. Prints one JSON document of what it saw; the Python test asserts on it.
'use strict';
const { Registry } = require('azure-iothub');

const out = {};

function errorOf(err) {
  return { name: err.name, status: err.response ? err.response.statusCode : undefined, message: err.message };
}

async function expectError(fn) {
  try {
    await fn();
    return { name: 'no error' };
  } catch (err) {
    return errorOf(err);
  }
}

async function main() {
  const registry = Registry.fromConnectionString(process.env.IOTHUB_CONNECTION_STRING);
  const edge = (await registry.create({ deviceId: 'node-edge', capabilities: { iotEdge: true } })).responseBody;
  out.created = { deviceId: edge.deviceId, edge: edge.capabilities.iotEdge, scope: edge.deviceScope,
                  hasKey: !!edge.authentication.symmetricKey.primaryKey };
  const leaf = (await registry.create({ deviceId: 'node-leaf', deviceScope: edge.deviceScope })).responseBody;
  out.leaf = { deviceScope: leaf.deviceScope, parentScopes: leaf.parentScopes };
  out.duplicate = await expectError(() => registry.create({ deviceId: 'node-edge' }));
  out.missing = await expectError(() => registry.get('nobody'));
  out.list = (await registry.list()).responseBody.map((d) => d.deviceId).sort();
  const updated = (await registry.update({ deviceId: 'node-leaf', status: 'disabled', deviceScope: edge.deviceScope,
                                           etag: leaf.etag })).responseBody;
  out.updated = { status: updated.status, etagChanged: updated.etag !== leaf.etag };

  const bulk = await registry.addDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-2' }]);
  out.bulk = bulk.responseBody;
  out.bulkConflict = await expectError(() => registry.addDevices([{ deviceId: 'bulk-1' }]));
  out.bulkRemove = (await registry.removeDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-2' }], true)).responseBody;

  const twin = (await registry.getTwin('node-edge')).responseBody;
  out.twin = { etag: twin.etag, desiredVersion: twin.properties.desired.$version,
               hasMetadata: '$metadata' in twin.properties.desired };
  const patched = (await registry.updateTwin('node-edge', { tags: { site: 'north' }, properties: { desired: { x: 1 } } },
                                             twin.etag)).responseBody;
  out.patched = { tags: patched.tags, x: patched.properties.desired.x,
                  lastUpdatedVersion: patched.properties.desired.$metadata.x.$lastUpdatedVersion };
  out.staleEtag = await expectError(() => registry.updateTwin('node-edge', { tags: { a: 1 } }, twin.etag));

  for (let i = 0; i < 5; i++) {
    await registry.create({ deviceId: `node-q${i}` });
  }
  const query = registry.createQuery("SELECT deviceId FROM devices WHERE startswith(deviceId, 'node-q')", 2);
  const pages = [];
  while (query.hasMoreResults) {
    const page = await query.next(query.continuationToken); // the promise form needs the token passed
    pages.push(page.result.map((r) => r.deviceId));
  }
  out.queryPages = pages;
  const twins = await registry.createQuery("SELECT * FROM devices WHERE deviceId = 'node-edge'").nextAsTwin();
  out.queryTwin = { deviceId: twins.result[0].deviceId, tags: twins.result[0].tags };
  out.count = (await registry.createQuery('SELECT COUNT() AS n FROM devices').next()).result;
  out.badQuery = await expectError(() => registry.createQuery('SELECT FROM devices').next());

  await registry.addModule({ deviceId: 'node-edge', moduleId: 'mod1' });
  out.module = (await registry.getModule('node-edge', 'mod1')).responseBody.moduleId;
  out.modules = (await registry.getModulesOnDevice('node-edge')).responseBody.map((m) => m.moduleId).sort();
  const moduleTwin = (await registry.getModuleTwin('node-edge', 'mod1')).responseBody;
  out.moduleTwin = { moduleId: moduleTwin.moduleId, reportedVersion: moduleTwin.properties.reported.$version };
  await registry.removeModule('node-edge', 'mod1');
  out.removedModule = await expectError(() => registry.getModule('node-edge', 'mod1'));

  const content = { modulesContent: JSON.parse(process.env.MODULES_CONTENT) };
  await registry.applyConfigurationContentOnDevice('node-edge', content);
  out.agentModules = Object.keys((await registry.getModuleTwin('node-edge', '$edgeAgent'))
    .responseBody.properties.desired.modules).sort();
  await registry.addConfiguration({ id: 'node-cfg', content: { deviceContent: { 'properties.desired.interval': 5 } },
                                    targetCondition: "tags.site = 'north'", priority: 2,
                                    metrics: { queries: { five: 'SELECT deviceId FROM devices WHERE properties.desired.interval = 5' } } });
  const cfg = (await registry.getConfiguration('node-cfg')).responseBody;
  out.configuration = { id: cfg.id, systemMetrics: cfg.systemMetrics.results, metrics: cfg.metrics.results };
  cfg.priority = 7;
  await registry.updateConfiguration(cfg);
  out.configurations = (await registry.getConfigurations()).responseBody.map((c) => [c.id, c.priority]);
  out.interval = (await registry.getTwin('node-edge')).responseBody.properties.desired.interval;
  await registry.removeConfiguration('node-cfg');
  out.removedConfiguration = await expectError(() => registry.getConfiguration('node-cfg'));
  out.statistics = (await registry.getRegistryStatistics()).responseBody;
  await registry.delete('node-leaf');
  out.deleted = await expectError(() => registry.get('node-leaf'));
}

main().then(() => {
  process.stdout.write(JSON.stringify(out));
}).catch((err) => {
  process.stdout.write(JSON.stringify({ ...out, fatal: errorOf(err), stack: err.stack }));
  process.exitCode = 1;
});
