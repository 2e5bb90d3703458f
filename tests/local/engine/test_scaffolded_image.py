"""The image of a module scaffolded from a user's score.py and a registered model builds on the real engine from the
offline base (wheels downloaded on the host, the model baked in and checked), and in it the host of
modules/inference imports and finds the pinned model verified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgegen.cli import main
from edgegen.generator.scaffold import new_solution
from edgegen.local.containerengine import ContainerEngine
from edgegen.models.packaging import add_inference_module
from edgegen.models.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHECK = ("import json, main, modelpath, amlhost\n"  # main.py imports the SDK, amlhost, outputs: nothing missing
         "print(json.dumps({'models': modelpath.prepare(), 'amlhost': amlhost.__file__}))\n")


def test_scaffolded_module_image_builds_and_holds_the_host(engine_host: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    sol = new_solution(tmp_path / "sol", module=None)
    reg = Registry(sol / ".models")
    (tmp_path / "calib.json").write_text('{"scale": 2.0}')
    reg.register(tmp_path / "calib.json", "calib", framework="custom")
    script = tmp_path / "my_score.py"
    script.write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    add_inference_module(sol, "scorer", registry=reg, models=["calib"], entry_script=script, environ={})
    monkeypatch.chdir(sol)
    monkeypatch.setenv("DOCKER_HOST", engine_host)
    with pytest.raises(SystemExit) as exc:
        main(["build", "--output", "json"])
    out = capsys.readouterr()
    assert exc.value.code in (0, None), out.out + out.err
    assert "calib:1" in out.out + out.err and "verified in the image" in out.out + out.err, out
    image = "localhost:5000/scorer:0.0.1-amd64"
    with ContainerEngine.connect({"DOCKER_HOST": engine_host}) as engine:
        assert engine.image(image) is not None
        container = engine.create(f"scaffold-check-{tmp_path.name}"[:60],
                                  {"Image": image, "Cmd": ["python", "-c", CHECK],
                                   "Env": [f"EDGEGEN_MODELS={reg.pin('calib')}"]})
        try:
            engine.start(container)
            code = engine.wait(container)
            logs = engine.logs(container).decode(errors="replace")
        finally:
            engine.remove(container)
    assert code == 0, logs
    report = json.loads(logs.strip().splitlines()[-1])
    assert report["amlhost"] == "/app/amlhost/__init__.py"
    [model] = report["models"]
    assert (model["name"], model["version"], model["verified"]) == ("calib", 1, True)
