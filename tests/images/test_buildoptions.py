from __future__ import annotations

import pytest

from edgegen.images.buildoptions import IGNORED, SUPPORTED, parse_build_options
from edgegen.images.errors import ImageError


def test_every_mapped_flag_lands_in_the_sdk_kwargs() -> None:
    opts = parse_build_options(
        [
            "--build-arg PIP_INDEX=https://pypi.example/simple",
            "--build-arg=VERSION=1.2=3",
            "--label org.opencontainers.image.title=sensor",
            "--label flag",
            "--add-host registry.local:10.0.0.5",
            "--network host",
            "--target runtime",
            "--platform linux/arm64",
            "--no-cache",
            "--pull false",
            "--cache-from localhost:5000/sensor:cache",
            "--cache-from localhost:5000/base:cache",
            "--shm-size 64m",
            "-m 512m",
            "--memory-swap 1g",
            "--cpu-shares 512",
            "--cpuset-cpus 0-1",
            "--squash",
            "--force-rm=true",
            "-q",
            "--isolation default",
        ]
    )
    assert opts.kwargs == {
        "buildargs": {"PIP_INDEX": "https://pypi.example/simple", "VERSION": "1.2=3"},
        "labels": {"org.opencontainers.image.title": "sensor", "flag": ""},
        "extra_hosts": {"registry.local": "10.0.0.5"},
        "network_mode": "host",
        "target": "runtime",
        "platform": "linux/arm64",
        "nocache": True,
        "pull": False,
        "cache_from": ["localhost:5000/sensor:cache", "localhost:5000/base:cache"],
        "shmsize": 64 * 1024 * 1024,
        "container_limits": {"memory": "512m", "memswap": "1g", "cpushares": 512, "cpusetcpus": "0-1"},
        "squash": True,
        "forcerm": True,
        "quiet": True,
        "isolation": "default",
    }
    assert opts.notes == ()


@pytest.mark.parametrize("flag", IGNORED)
def test_rm_tag_and_file_are_ignored_with_a_note(flag: str) -> None:
    opts = parse_build_options([f"{flag} something", "--build-arg A=1"])
    assert opts.kwargs == {"buildargs": {"A": "1"}}
    assert len(opts.notes) == 1 and flag in opts.notes[0] and "ignored" in opts.notes[0]


def test_unknown_option_names_the_module_json_and_the_option() -> None:
    with pytest.raises(ImageError) as info:
        parse_build_options(["--build-arg A=1", "--secret id=x"], source="modules/sensor/module.json")
    text = info.value.render()
    assert "'--secret'" in text
    assert "modules/sensor/module.json" in text
    assert "image.buildOptions[1]" in text
    assert "--build-arg" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        ("--build-arg", "expected a value"),
        ("--build-arg NOVALUE", "NAME=VALUE"),
        ("--add-host justahost", "HOST:IP"),
        ("--no-cache maybe", "'true' or 'false'"),
        ("--cpu-shares lots", "integer"),
        ("--shm-size huge", "size"),
    ],
)
def test_bad_values_are_clear_errors(option: str, fragment: str) -> None:
    with pytest.raises(ImageError) as info:
        parse_build_options([option], source="m/module.json")
    assert fragment in info.value.message
    assert info.value.location is not None and info.value.location.json_path == "image.buildOptions[0]"


def test_blank_entries_are_skipped_and_table_covers_iotedgedev_flags() -> None:
    assert parse_build_options(["", "   "]).kwargs == {}
    for flag in ("--add-host", "--build-arg", "--cache-from", "--label", "--network", "--no-cache", "--platform",
                 "--pull", "--target", "--shm-size", "--squash", "-m", "--memory"):  # fmt: skip
        assert flag in SUPPORTED
