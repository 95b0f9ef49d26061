"""`--model auto`: each branch, with CUDA presence and model availability stood in for."""

from __future__ import annotations

import pytest
import yaml

from t3d.cli import main
from t3d.priors import auto
from tests.conftest import TINY_RUN


@pytest.fixture
def machine(monkeypatch):
    def set_machine(cuda: bool, sd: bool):
        monkeypatch.setattr(auto, "cuda_available", lambda: cuda)
        monkeypatch.setattr(auto, "sd_model_available", lambda model: (sd, "stand-in"))
    return set_machine


@pytest.mark.parametrize("cuda, sd, chosen, why", [
    (False, True, "analytic", "no CUDA GPU here"),
    (False, False, "analytic", "no CUDA GPU here"),
    (True, False, "analytic", "stand-in"),
    (True, True, "sd:", "a CUDA GPU"),
])
def test_auto_resolves_by_machine(machine, monkeypatch, cuda, sd, chosen, why):
    monkeypatch.setenv("T3D_SD_MODEL", "owner/some-sd")
    machine(cuda, sd)
    resolved = auto.resolve("auto")
    assert resolved.model == ("owner/some-sd" if chosen == "sd:" else "analytic")
    assert why in resolved.line and "--model" in resolved.line  # says why and how to force the other


def test_an_explicit_model_is_kept(machine):
    machine(True, True)
    assert auto.resolve("analytic").model == "analytic" and auto.resolve("analytic").line == ""


def test_the_resolved_model_is_recorded_and_announced(machine, tmp_path, capsys):
    machine(False, False)
    assert main(["generate", "a smiling head", "--steps", "1", "--out", str(tmp_path / "r"), "--no-video",
                 "--no-mesh", *TINY_RUN]) == 0
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["model"] == "analytic"
    assert "prior: the built-in analytic prior (--model auto" in capsys.readouterr().err


def test_auto_on_the_builtin_prior_without_an_object_says_how_to_use_sd(machine, tmp_path, capsys):
    machine(False, False)
    assert main(["generate", "a teapot", "--out", str(tmp_path / "r"), *TINY_RUN]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "knows no object in 'a teapot'" in lines[0] and "--model sd" in lines[0]
    assert "head" in lines[0] and "mug" in lines[0]
    assert not (tmp_path / "r").exists()
