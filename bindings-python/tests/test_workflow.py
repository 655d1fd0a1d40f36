"""The release workflow of the wheels cannot run here (no GitHub runners):
its shape is checked instead, so that an edit cannot silently drop a
platform or build something other than this package's abi3 wheel."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import REPO

yaml = pytest.importorskip("yaml")
WORKFLOW = REPO / ".github" / "workflows" / "python-wheels.yml"


def load() -> Any:
    return yaml.safe_load(WORKFLOW.read_text())


def maturin_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith("PyO3/maturin-action@")]


def test_every_platform_of_the_issue_is_built() -> None:
    jobs = load()["jobs"]
    assert jobs["linux"]["strategy"]["matrix"]["target"] == ["x86_64", "aarch64"]
    assert jobs["musllinux"]["strategy"]["matrix"]["target"] == ["x86_64", "aarch64"]
    assert {p["target"] for p in jobs["macos"]["strategy"]["matrix"]["platform"]} == {"x86_64", "aarch64"}
    assert {p["target"] for p in jobs["windows"]["strategy"]["matrix"]["platform"]} == {"x64", "aarch64"}
    assert maturin_steps(jobs["linux"])[0]["with"]["manylinux"] == "auto"
    assert maturin_steps(jobs["musllinux"])[0]["with"]["manylinux"] == "musllinux_1_2"


def test_each_build_is_the_release_wheel_of_this_package() -> None:
    workflow = load()
    manifest = workflow["env"]["MANIFEST"]
    assert (REPO / manifest).exists() and manifest == "bindings-python/Cargo.toml"
    for name in ("linux", "musllinux", "windows", "macos"):
        (step,) = maturin_steps(workflow["jobs"][name])
        args = step["with"]["args"].split()
        assert "--release" in args and "--manifest-path" in args, (name, args)
        assert "-i" not in args and "--find-interpreter" not in args, "abi3: one wheel per platform"
    (sdist,) = maturin_steps(workflow["jobs"]["sdist"])
    assert sdist["with"]["command"] == "sdist"


def test_nothing_is_published_before_the_smoke_test() -> None:
    jobs = load()["jobs"]
    assert "smoke" in jobs["release"]["needs"] and jobs["release"]["if"].startswith("${{ startsWith(github.ref")
    run = jobs["smoke"]["steps"][-1]["run"]
    assert "oc2mqtt --version" in run and "python -m oc2mqtt --help" in run
    # The abi3 floor in pyproject.toml is what the smoke test's oldest Python is.
    text = (REPO / "bindings-python" / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.9"' in text and "3.9" in jobs["smoke"]["strategy"]["matrix"]["python"]
