"""`t3d debias-prompt`: JSON and table output with a tiny BERT folder, and the offline error."""

import json

import pytest

from t3d.cli import main
from tests.helpers.tolerances import sum_rounding

VIEWS = ("front", "side", "back", "top")


def test_debias_prompt_command_json_and_table(tiny_bert, capsys):
    assert main(["debias-prompt", "a smiling dog", "--mlm", str(tiny_bert), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["view_words"] == list(VIEWS) and data["mlm"] == str(tiny_bert)
    # fp32 softmax probabilities (JSON keeps every bit): their sum is 1 up to a few roundings.
    assert sum(data["p_full"].values()) == pytest.approx(1.0, rel=0, abs=sum_rounding(1.0, 4))
    for w in data["words"]:
        for v in VIEWS:
            expected = data["p_full"][v] / (0.5 * data["p_full"][v] + 0.5 * w["p_without"][v])
            assert w["ratio"][v] == expected  # the command's fp64 expression, exactly
            assert (v in w["dropped"]) == (w["ratio"][v] < 0.95)
            assert (w["word"] in data["views"][v].split()) == (v not in w["dropped"])
    # Pinned words survive any threshold; the table shows every view's prompt.
    assert main(["debias-prompt", "a smiling dog", "--mlm", str(tiny_bert), "--keep-words", "dog",
                 "--threshold", "10"]) == 0
    table = capsys.readouterr().out
    for v in VIEWS:
        assert f"dog, {v} view" in table
    assert "smiling" in table  # listed among the dropped words


def test_debias_prompt_command_offline_error(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["debias-prompt", "a smiling dog"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bert-base-uncased" in err[0] and "--mlm" in err[0]
