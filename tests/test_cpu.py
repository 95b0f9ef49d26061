"""How many threads a run uses by default: the usable cores, or fewer when OMP_NUM_THREADS says so
(a benchmark or batch worker that shares the cores with others must not take them all)."""

import pytest
import torch

from t3d import cpu


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_omp_num_threads_caps_the_default(monkeypatch, torch_threads):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu.configure_threads(0) == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "32")  # never more than the cores this process may use
    assert cpu.default_threads() == 8
    for junk in ("", "0", "two", "-3"):
        monkeypatch.setenv("OMP_NUM_THREADS", junk)
        assert cpu.default_threads() == 8, junk


def test_an_explicit_count_wins_over_the_environment(monkeypatch, torch_threads):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu.configure_threads(2) == 2 and torch.get_num_threads() == 2
