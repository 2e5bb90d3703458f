"""The local stack: certificates, SAS, MQTT gateway, edge hub router, agent, workload API, hub stand-in."""
