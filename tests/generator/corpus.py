"""A generated corpus of IoT Edge solutions, in the layouts real solutions use, for the comparison with iotedgedev.

Each solution is a folder with a ``.env``, a deployment template and ``modules/*/module.json``, drawn at random
(seeded) from the layouts seen in public solutions:

* registry settings in ``.env``: iotedgedev's own (``CONTAINER_REGISTRY_SERVER`` with empty user/password), an
  ACR with user and password, user/password without a server, the VS Code extension's per-registry
  ``CONTAINER_REGISTRY_USERNAME_<name>``/``PASSWORD_<name>`` (the address only in the template), samples'
  ``CONTAINER_REGISTRY_ADDRESS``, several registries, none at all;
* ``registryCredentials`` in the template: absent, ``{}``, iotedgedev's ``$CONTAINER_REGISTRY_*`` entry, the VS
  Code extension's literal address with ``$CONTAINER_REGISTRY_USERNAME_<name>``, ``${CONTAINER_REGISTRY_ADDRESS}``;
* dotenv syntax: quotes, ``export``, comments, interpolation, CRLF;
* module.json repositories through each of those variables or literal, tags with ``${BUILD}``, platforms, debug;
* createOptions as objects, strings and long enough to be cut into chunks; schema-template versions; file names;
* Azure ML ``deploymentconfig.json`` files beside some module.json (valid and not).

Nothing here knows what the output should be: the test compares with what iotedgedev writes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

__all__ = ["random_solution"]

ACR = "myacr.azurecr.io"

# .env lines per registry layout, and the repository prefix module.json files use with it
REGISTRY_LAYOUTS: dict[str, tuple[list[str], list[str]]] = {
    "iotedgedev": (['CONTAINER_REGISTRY_SERVER="localhost:5000"', 'CONTAINER_REGISTRY_USERNAME=""',
                    'CONTAINER_REGISTRY_PASSWORD=""'], ["${CONTAINER_REGISTRY_SERVER}", "$CONTAINER_REGISTRY_SERVER"]),
    "acr": ([f"CONTAINER_REGISTRY_SERVER={ACR}", "CONTAINER_REGISTRY_USERNAME=myacr",
             "CONTAINER_REGISTRY_PASSWORD='p@ss=word'"], ["${CONTAINER_REGISTRY_SERVER}", ACR]),
    "no-server": (['CONTAINER_REGISTRY_USERNAME="myacr"', 'CONTAINER_REGISTRY_PASSWORD="secret"'], [ACR]),
    "vscode": (["CONTAINER_REGISTRY_USERNAME_myacr=myacr", "CONTAINER_REGISTRY_PASSWORD_myacr=secret"], [ACR]),
    "vscode-empty": (["CONTAINER_REGISTRY_USERNAME_myacr=", "CONTAINER_REGISTRY_PASSWORD_myacr="], [ACR]),
    "address": ([f'CONTAINER_REGISTRY_ADDRESS="{ACR}"', 'CONTAINER_REGISTRY_USERNAME="myacr"',
                 'CONTAINER_REGISTRY_PASSWORD="secret"'], ["${CONTAINER_REGISTRY_ADDRESS}"]),
    "two": (['CONTAINER_REGISTRY_SERVER="localhost:5000"', f'CONTAINER_REGISTRY_SERVER_2="{ACR}"',
             'CONTAINER_REGISTRY_USERNAME_2="u2"', 'CONTAINER_REGISTRY_PASSWORD_2="p2"'],
            ["${CONTAINER_REGISTRY_SERVER}", "${CONTAINER_REGISTRY_SERVER_2}"]),
    "none": ([], ["localhost:5000", "${REGISTRY}"]),
}

CREDENTIALS: dict[str, Any] = {
    "absent": None,
    "empty": {},
    "iotedgedev": {"registryName": {"username": "$CONTAINER_REGISTRY_USERNAME",
                                    "password": "$CONTAINER_REGISTRY_PASSWORD",
                                    "address": "$CONTAINER_REGISTRY_SERVER"}},
    "vscode": {"myacr": {"username": "$CONTAINER_REGISTRY_USERNAME_myacr",
                         "password": "$CONTAINER_REGISTRY_PASSWORD_myacr", "address": ACR}},
    "address": {"acr": {"username": "${CONTAINER_REGISTRY_USERNAME}", "password": "${CONTAINER_REGISTRY_PASSWORD}",
                        "address": "${CONTAINER_REGISTRY_ADDRESS}"}},
}


# the template's registryCredentials that usually come with each .env layout
USUAL_CREDENTIALS = {"iotedgedev": "iotedgedev", "acr": "iotedgedev", "no-server": "empty", "vscode": "vscode",
                     "vscode-empty": "vscode", "address": "address", "two": "empty", "none": "absent"}


def _dotenv(rng: random.Random, layout: str, extra: dict[str, str]) -> str:
    lines = ["#", "# CONTAINER REGISTRY", "#"] if rng.random() < 0.5 else []
    registry_lines = list(REGISTRY_LAYOUTS[layout][0])
    if layout == "none" and rng.random() < 0.7:
        registry_lines.append('REGISTRY="localhost:5000"')
    for line in registry_lines:
        if rng.random() < 0.15:
            line = "export " + line
        lines.append(line)
        if rng.random() < 0.2:
            lines.append("    # a comment line, indented as iotedgedev's .env.tmp does")
    lines += ['CONFIG_OUTPUT_DIR="config"', f'EDGE_RUNTIME_VERSION="{rng.choice(["1.2", "1.4"])}"']
    if rng.random() < 0.9:
        lines += ['EDGEAGENT_SCHEMA_VERSION="1.1"', 'EDGEHUB_SCHEMA_VERSION="1.2"']
    lines += [f'{k}="{v}"' for k, v in extra.items()]
    if rng.random() < 0.2:
        lines.append('IMAGE_BASE="${CONTAINER_REGISTRY_SERVER}/base"')  # interpolation inside .env
    newline = "\r\n" if rng.random() < 0.1 else "\n"
    return newline.join(lines) + newline


def random_solution(rng: random.Random, root: Path) -> dict[str, Any]:
    """Write one solution under ``root``; return ``{"dir", "template", "env", "platform", "layout"}``."""
    root.mkdir(parents=True)
    env: dict[str, str] = {}
    layout = rng.choice(sorted(REGISTRY_LAYOUTS))
    dotenv_extra: dict[str, str] = {}
    if rng.random() < 0.3:
        env["CONTAINER_TAG"] = rng.choice(["rc1", "dev"])
    if rng.random() < 0.2:
        env["DEPLOYMENT_CONFIG_FILE"] = "fixed.json"
    if rng.random() < 0.4:
        dotenv_extra["BUILD"] = str(rng.randint(1, 9))
    (root / ".env").write_bytes(_dotenv(rng, layout, dotenv_extra).encode())
    prefixes = REGISTRY_LAYOUTS[layout][1]
    platforms_all = ["amd64", "amd64.debug", "arm32v7", "arm64v8", "windows-amd64"]
    folders = []
    for i in range(rng.randint(0, 4)):
        name = rng.choice(["filter", "Sensor", "m_1", "x", "SampleModule"]) + str(i)
        folder = root / "modules" / name
        folder.mkdir(parents=True)
        if rng.random() < 0.1:
            (folder / "readme.txt").write_text("not a module")
            continue
        # most solutions build every platform they deploy (the VS Code extension writes amd64, amd64.debug,
        # arm32v7, arm64v8); some lack the one a placeholder asks for, which leaves it unresolved
        plats = platforms_all[:4] if rng.random() < 0.8 else rng.sample(platforms_all, rng.randint(1, 4))
        version = rng.choice(["0.0.1", "1.2.3-RC"] + (["1.0.${BUILD}"] if "BUILD" in dotenv_extra
                                                       or rng.random() < 0.1 else []))
        module_json: dict[str, Any] = {"$schema-version": "0.0.1", "description": "", "image": {
            "repository": f"{rng.choice(prefixes)}/{name.lower() if rng.random() < 0.5 else name}",
            "tag": {"version": version, "platforms": {p: f"./Dockerfile.{p}" for p in plats}},
            "buildOptions": [], "contextPath": "./"}, "language": rng.choice(["python", "csharp"])}
        (folder / "module.json").write_text(json.dumps(module_json, indent=4))
        if rng.random() < 0.2:  # an Azure ML module's deploymentconfig.json (iotedgedev ignores it), sometimes bad
            cpu = rng.choice([0.5, 2, -1, "x"])
            (folder / "deploymentconfig.json").write_text(json.dumps(
                {"computeType": "ACI", "containerResourceRequirements": {"cpu": cpu, "memoryInGB": 1.5}}))
        folders.append((name, plats))
    modules: dict[str, Any] = {}
    for j in range(rng.randint(1, 5)):
        choice = rng.random()
        if choice < 0.04:
            image = "${MODULES.nosuch}"
        elif choice < 0.07:
            image = rng.choice(["$REG/img:1", "mcr.microsoft.com/x:${BUILD}"])
        elif folders and choice < 0.7:
            name, plats = rng.choice(folders)
            image = "${MODULES." + name + rng.choice(["", "", "", ".debug", "." + rng.choice(plats), ".arm64v8"]) + "}"
        else:
            image = rng.choice(["mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.0",
                                "busybox:1", f"{ACR}/pre:1"])
        opts: Any = rng.choice([
            {}, "", '{"a":1}', {"Env": [f"K{k}={'v' * rng.randint(1, 60)}" for k in range(rng.randint(0, 90))]},
            {"HostConfig": {"Binds": ["/a:/b"], "Privileged": rng.random() < 0.5}}, "[1,2]", None,
            {"Env": ["X=" + "x" * rng.randint(3800, 4400)]}])
        settings: dict[str, Any] = {"image": image}
        if opts is not None:
            settings["createOptions"] = opts
        modules[f"mod{j}"] = {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
                              "settings": settings}
    runtime_settings: dict[str, Any] = {"minDockerVersion": "v1.25", "loggingOptions": ""}
    creds = CREDENTIALS[USUAL_CREDENTIALS[layout] if rng.random() < 0.75 else rng.choice(sorted(CREDENTIALS))]
    if creds is not None:
        runtime_settings["registryCredentials"] = creds
    template: dict[str, Any] = {"modulesContent": {
        "$edgeAgent": {"properties.desired": {"schemaVersion": "${EDGEAGENT_SCHEMA_VERSION}", "runtime": {
            "type": "docker", "settings": runtime_settings},
            "systemModules": {"edgeAgent": {"type": "docker", "settings": {
                "image": "mcr.microsoft.com/azureiotedge-agent:${EDGE_RUNTIME_VERSION}",
                "createOptions": rng.choice(["", {}])}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {
                    "image": "mcr.microsoft.com/azureiotedge-hub:${EDGE_RUNTIME_VERSION}", "createOptions": {
                        "HostConfig": {"PortBindings": {"8883/tcp": [{"HostPort": "8883"}]}}}}}},
            "modules": modules}},
        "$edgeHub": {"properties.desired": {"schemaVersion": rng.choice(["1.2", "${EDGEHUB_SCHEMA_VERSION}"]),
                                            "routes": {"r": "FROM /messages/* WHERE $connectionModuleId = 'a' "
                                                            "INTO $upstream"},
                                            "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}}}}
    schema = rng.choice([None, "0.0.1", "1.0.0", "4.0.0", "0.0.10"])
    if schema is not None:
        template["$schema-template"] = schema
    if rng.random() < 0.3:
        env["EDGEAGENT_SCHEMA_VERSION"] = "1.1"
    if rng.random() < 0.5:
        env["EDGEHUB_SCHEMA_VERSION"] = "1.2"
    name = rng.choice(["deployment.template.json", "deployment.debug.template.json", "layer.json", "x.template.json"])
    (root / name).write_text(json.dumps(template, indent=rng.choice([None, 2, 4])))
    return {"dir": str(root), "template": name, "env": env, "layout": layout,
            "platform": rng.choice([None, None, "arm64v8", "amd64.debug"])}
