"""The local device runtime joined to an IoT Hub (Azure or the stand-in), the way edgeAgent and edgeHub join one:
deployments from the ``$edgeAgent``/``$edgeHub`` twins, ``$upstream`` to the hub, module identities fetched
with the device's own credentials."""
