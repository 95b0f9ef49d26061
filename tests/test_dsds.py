"""D-SDS: dynamic score clipping, MLM prompt debiasing (PMI rule), the dsds preset and
`t3d debias-prompt`, all offline (a tiny random BERT saved to a folder, and a controlled stub)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
import yaml
from dsds_helpers import build_tiny_bert

from t3d.cli import main
from t3d.config import RunConfig, dump_yaml, validate
from t3d.config.codec import from_dict, to_dict
from t3d.config.parsing import parse_score_clip
from t3d.errors import T3dError
from t3d.guidance.post.config import PostConfig
from t3d.guidance.post.score_clip import ScoreClip
from t3d.hub import ModelUnavailable
from t3d.priors.analytic import PIXEL_SCORE_CLIP, AnalyticPrior
from t3d.priors.base import Prior
from t3d.priors.config import AnalyticConfig
from t3d.priors.references import ReferenceSet
from t3d.prompts.config import DebiasConfig, PromptsConfig
from t3d.prompts.debias import debias_prompt, debiased_view_prompts
from t3d.prompts.mlm import TEMPLATE, load_mlm
from t3d.scene.cameras import Cameras
from tests.helpers.configs import distillation, run_config

VIEWS = ("front", "side", "back", "top")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


def toy_prior(n=6, size=8, words=("head",)):
    images = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    refs = ReferenceSet(images, torch.linspace(-180, 180, n + 1)[:-1], torch.zeros(n),
                        torch.zeros(n, dtype=torch.long), ["toy"], [tuple(words)])
    return AnalyticPrior(AnalyticConfig(bandwidth=0.1), "cpu", refs=refs)


# ---------------------------------------------------------------- score clipping


def test_clip_schedule_at_start_mid_end_and_elementwise():
    clip = ScoreClip(5.0, 20.0)
    assert (clip.threshold(0.0), clip.threshold(0.5), clip.threshold(1.0)) == (5.0, 12.5, 20.0)
    grad = torch.tensor([[-30.0, -12.0, 0.3], [7.0, 13.0, 25.0]])
    assert torch.equal(clip(grad, 0.0), torch.tensor([[-5.0, -5.0, 0.3], [5.0, 5.0, 5.0]]))
    assert torch.equal(clip(grad, 0.5), torch.tensor([[-12.5, -12.0, 0.3], [7.0, 12.5, 12.5]]))
    assert torch.equal(clip(grad, 1.0), torch.tensor([[-20.0, -12.0, 0.3], [7.0, 13.0, 20.0]]))
    static = ScoreClip.from_config(parse_score_clip("3"), SimpleNamespace(prior=None))
    assert static.threshold(0.0) == static.threshold(1.0) == 3.0


def _clip_for(setting, prior):
    """The clip piece a run with `guidance.post.score_clip = setting` builds on `prior`."""
    return ScoreClip.from_config(setting, SimpleNamespace(prior=prior))


def test_auto_clip_is_scaled_to_the_prior():
    clip = _clip_for("auto", toy_prior())
    assert (clip.start, clip.end) == PIXEL_SCORE_CLIP == (5.0, 20.0)

    class LatentPrior(Prior):  # a latent text-to-image prior: the interface's defaults
        pass

    clip = _clip_for("auto", LatentPrior())
    assert (clip.start, clip.end) == LatentPrior().default_score_clip() == (2.0, 8.0)
    assert _clip_for(None, LatentPrior()) is None and _clip_for(parse_score_clip("off"), LatentPrior()) is None
    with pytest.raises(T3dError):
        PostConfig(score_clip="sometimes").validate()


def _step_grad(settings: dict, progress: float):
    prior = toy_prior()
    sds = distillation(prior, "a head", "sds", settings)
    image = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    cams = Cameras(torch.tensor([0.0, 150.0]), torch.zeros(2), torch.full((2,), 2.0), torch.full((2,), 45.0))
    sds.loss(image, cams, progress, torch.Generator().manual_seed(2))
    return sds, sds.last.grad


def test_clip_applies_elementwise_and_only_when_enabled():
    off, raw = _step_grad({"guidance.guide.scale": 100.0}, 0.5)
    assert off.post == []
    on, clipped = _step_grad({"guidance.guide.scale": 100.0, "guidance.post.score_clip": (0.05, 0.45)}, 0.5)
    assert len(on.post) == 1
    # Same step (same generator): the clipped gradient is the unclipped one clamped at C(0.5) = 0.25.
    torch.testing.assert_close(clipped, raw.clamp(-0.25, 0.25))
    over = raw.abs() > 0.25
    assert over.any() and (~over).any()  # clipping is active on some elements, not all
    assert torch.equal(clipped[~over], raw[~over]) and (clipped[over].abs() == 0.25).all()


def test_score_clip_flag_values_and_yaml_round_trip():
    # "off" is the absence of a clip: it parses to None, the value the config stores for it.
    assert parse_score_clip("auto") == "auto" and parse_score_clip("off") is None
    assert parse_score_clip("2:8") == (2.0, 8.0) and parse_score_clip("3") == (3.0, 3.0)
    for clip in ("auto", (2.0, 8.0), None):
        cfg = RunConfig(prompt="a head")
        cfg.guidance.post.score_clip = clip
        assert from_dict(RunConfig, to_dict(cfg)).guidance.post.score_clip == clip
        assert from_dict(RunConfig, yaml.safe_load(dump_yaml(cfg))).guidance.post.score_clip == clip
    cfg = RunConfig(prompt="a head")
    cfg.guidance.post.score_clip = "sometimes"
    with pytest.raises(T3dError, match="--score-clip"):
        validate(cfg)
    saved = yaml.safe_load(dump_yaml(run_config("dsds")))  # what a dsds run writes to config.yaml
    assert saved["guidance"]["post"]["score_clip"] == "auto"


def test_dsds_preset_and_composition():
    cfg = run_config("dsds")
    g, p = cfg.guidance, cfg.prompts
    assert (g.post.score_clip, p.debias.mode, p.front_halfwidth, p.view_words, g.guide.scale) == (
        "auto", "auto", 22.5, VIEWS, 100.0)
    # Flags after the preset win, and D-SDS pieces compose with any method.
    clip = "guidance.post.score_clip"
    assert run_config("dsds", {clip: parse_score_clip("1:4")}).guidance.post.score_clip == (1.0, 4.0)
    assert run_config("dsds", {clip: parse_score_clip("off")}).guidance.post.score_clip is None
    assert run_config("sds", {clip: parse_score_clip("auto")}).guidance.post.score_clip == "auto"
    plain = run_config("sds")
    assert plain.guidance.post.score_clip is None and plain.prompts.debias.mode == "off"


# ---------------------------------------------------------------- the PMI rule on a controlled MLM


class StubScorer:
    """An MLM stand-in whose P(view | prompt) we choose."""

    def __init__(self, table: dict[str, list[float]]):
        self.table, self.calls = table, 0

    def view_probabilities(self, prompts, view_words):
        self.calls += 1
        return torch.tensor([self.table[p] for p in prompts], dtype=torch.float64)


DOG = {
    "a smiling dog": [0.5, 0.3, 0.1, 0.1],
    "smiling dog": [0.5, 0.3, 0.1, 0.1],  # without "a": nothing changes, ratio 1
    "a dog": [0.3, 0.3, 0.3, 0.1],  # without "smiling": the back view becomes likely
    "a smiling": [0.56, 0.26, 0.09, 0.09],  # without "dog": front slightly likelier
}


def test_pmi_rule_matches_hand_computed_ratios():
    stub = StubScorer(DOG)
    result = debias_prompt("a smiling dog", stub, VIEWS)
    assert stub.calls == 1  # every prompt variant in one batch
    ratios = {w.word: w.ratio for w in result.words}
    # ratio = P(v|full) / (0.5 P(v|full) + 0.5 P(v|without u))
    assert ratios["a"] == pytest.approx([1.0, 1.0, 1.0, 1.0])
    assert ratios["smiling"] == pytest.approx([0.5 / 0.4, 1.0, 0.1 / 0.2, 1.0])  # back: 0.5 < 0.95 -> drop
    assert ratios["dog"] == pytest.approx([0.5 / 0.53, 0.3 / 0.28, 0.1 / 0.095, 0.1 / 0.095])  # front 0.9434 -> drop
    assert result.bodies() == ("a smiling", "a smiling dog", "a dog", "a smiling dog")
    # The threshold is the boundary: at 0.94 the front view keeps "dog" (0.9434 >= 0.94).
    assert debias_prompt("a smiling dog", StubScorer(DOG), VIEWS, threshold=0.94).bodies()[0] == "a smiling dog"


def test_pinned_words_have_p_u_one_and_never_drop():
    result = debias_prompt("a smiling Dog,", StubScorer({**DOG, "a smiling Dog,": DOG["a smiling dog"],
                                                        "smiling Dog,": DOG["smiling dog"],
                                                        "a Dog,": DOG["a dog"]}),
                           VIEWS, keep_words=("dog", "SMILING"), threshold=10.0)
    by_word = {w.word: w for w in result.words}
    assert by_word["Dog,"].pinned and by_word["Dog,"].ratio == pytest.approx([1.0] * 4)
    assert by_word["smiling"].ratio == pytest.approx([1.0] * 4)
    assert by_word["a"].dropped == [True] * 4  # threshold 10 drops every unpinned word
    assert result.bodies() == ("smiling Dog,",) * 4


# ---------------------------------------------------------------- a tiny real BERT (mechanics)


def _direct_probability(scorer, prompt: str, word: str) -> float:
    """P(word | prompt) by the chain rule, one unbatched model call per piece (independent of the batch)."""
    tok, model = scorer.tokenizer, scorer.model
    pieces = tok.convert_tokens_to_ids(tok.tokenize(word))
    ids = tok(TEMPLATE.format(mask=" ".join([tok.mask_token] * len(pieces)), prompt=prompt), return_tensors="pt")["input_ids"]
    masks = (ids[0] == tok.mask_token_id).nonzero().flatten().tolist()
    logp = 0.0
    for j, piece in enumerate(pieces):
        with torch.no_grad():
            probs = model(input_ids=ids).logits[0, masks[j]].softmax(-1)
        logp += math.log(probs[piece].item())
        ids[0, masks[j]] = piece  # fill it in for the next piece
    return math.exp(logp)


def test_tiny_bert_view_probabilities_with_a_multi_piece_word(tiny_bert):
    scorer = load_mlm(str(tiny_bert))  # the code path of --mlm FOLDER
    words = ["front", "side", "back", "overhead"]
    assert len(scorer.pieces("overhead")) == 2 and len(scorer.pieces("front")) == 1
    prompts = ["a smiling dog", "a mug with a big handle"]  # different lengths: padded in one batch
    probs = scorer.view_probabilities(prompts, words)
    assert probs.shape == (2, 4)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, dtype=probs.dtype))
    for p, prompt in enumerate(prompts):
        raw = torch.tensor([_direct_probability(scorer, prompt, w) for w in words], dtype=torch.float64)
        torch.testing.assert_close(probs[p].double(), raw / raw.sum(), rtol=1e-4, atol=1e-7)
    with pytest.raises(T3dError, match="not in the vocabulary"):
        scorer.view_probabilities(prompts, ["front", "side", "back", "zeppelin"])


def test_tiny_bert_drops_exactly_below_threshold_and_keeps_pinned(tiny_bert):
    scorer = load_mlm(str(tiny_bert))
    prompt = "a smiling red dog with a big head"
    base = debias_prompt(prompt, scorer, VIEWS)
    ratios = torch.tensor([w.ratio for w in base.words])
    threshold = ratios.median().item()  # some ratios fall below it, some do not
    result = debias_prompt(prompt, scorer, VIEWS, keep_words=("dog",), threshold=threshold)
    full = torch.tensor(result.p_full)
    dropped_any = kept_any = False
    for w in result.words:
        ratio = torch.tensor(w.ratio)
        if w.word == "dog":
            assert w.pinned and w.dropped == [False] * 4 and ratio.tolist() == pytest.approx([1.0] * 4)
            continue
        torch.testing.assert_close(ratio, full / (0.5 * full + 0.5 * torch.tensor(w.p_without)))
        assert w.dropped == (ratio < threshold).tolist()
        dropped_any |= any(w.dropped)
        kept_any |= not all(w.dropped)
    assert dropped_any and kept_any
    for v, body in enumerate(result.bodies()):
        assert body.split() == [w.word for w in result.words if not w.dropped[v]]
        assert "dog" in body.split()


def test_missing_model_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(T3dError, match=r"'bert-base-uncased'.*--mlm /path/to/folder"):
        load_mlm("bert-base-uncased")
    with pytest.raises(T3dError, match="no such folder"):
        load_mlm(str(tmp_path / "nowhere"))


# ---------------------------------------------------------------- debiasing inside a run


def _failing_loader(name, local_only):
    reason = "it is not in the local Hugging Face cache"
    raise ModelUnavailable(f"cannot load the masked language model {name!r}: {reason}", reason)


def _prompts(mode: str, **fields) -> PromptsConfig:
    return PromptsConfig(debias=DebiasConfig(mode=mode), **fields)


def test_debias_modes_auto_on_off():
    prior = toy_prior(words=("dog",))
    auto = _prompts("auto", view_words=VIEWS)
    views, notes = debiased_view_prompts("a smiling dog", auto, prior, load=_failing_loader)
    assert views.bodies is None and len(notes) == 1 and "skipped" in notes[0]
    with pytest.raises(T3dError, match="bert-base-uncased"):
        debiased_view_prompts("a smiling dog", _prompts("on"), prior, load=_failing_loader)
    views, notes = debiased_view_prompts("a smiling dog", _prompts("off"), prior,
                                         load=_failing_loader)  # never called
    assert views.bodies is None and notes == []


def test_analytic_object_keyword_is_never_dropped():
    # The stub says "dog" contradicts the front view; for a text prior it would be dropped there...
    cfg = _prompts("on", view_words=VIEWS)
    loader = lambda name, local_only: StubScorer(DOG)  # noqa: E731
    no_keywords = Prior()  # the interface's default: no words select what it draws
    views, _ = debiased_view_prompts("a smiling dog", cfg, no_keywords, load=loader)
    assert views.bodies[0] == "a smiling"
    # ...but the analytic prior selects its object by that word, so it is pinned implicitly.
    views, notes = debiased_view_prompts("a smiling dog", cfg, toy_prior(words=("dog", "puppy")), load=loader)
    assert views.bodies == ("a smiling dog", "a smiling dog", "a dog", "a smiling dog")
    assert views.all_prompts()[2] == "a dog, back view" and "back: 'a dog'" in notes[0]


def test_generate_dsds_with_a_local_mlm_folder(tiny_bert, tiny_run_args, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["generate", "a smiling head", "--method", "dsds", "--steps", "2", "--out", str(out),
                 "--no-video", "--no-mesh", "--mlm", str(tiny_bert), "--prompt-debias", "on",
                 "--set", "prompts.debias.threshold=10.0", *tiny_run_args])
    assert code == 0
    err = capsys.readouterr().err
    # Threshold 10 drops every word it may; "head" names the analytic prior's object and stays.
    assert "front: 'head'" in err and "top: 'head'" in err


def test_generate_dsds_offline_without_mlm_runs_with_a_note(tiny_run_args, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["generate", "a smiling head", "--method", "dsds", "--steps", "2", "--out", str(tmp_path / "r"),
                 "--no-video", "--no-mesh", *tiny_run_args])
    assert code == 0
    assert capsys.readouterr().err.count("prompt debiasing skipped") == 1
    code = main(["generate", "a smiling head", "--method", "dsds", "--prompt-debias", "on", "--steps", "2",
                 "--out", str(tmp_path / "r2"), "--no-video", "--no-mesh", *tiny_run_args])
    assert code == 2 and not (tmp_path / "r2").exists()  # nothing written
    assert "bert-base-uncased" in capsys.readouterr().err


# ---------------------------------------------------------------- t3d debias-prompt


def test_debias_prompt_command_json_and_table(tiny_bert, capsys):
    assert main(["debias-prompt", "a smiling dog", "--mlm", str(tiny_bert), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["view_words"] == list(VIEWS) and data["mlm"] == str(tiny_bert)
    assert sum(data["p_full"].values()) == pytest.approx(1.0)
    for w in data["words"]:
        for v in VIEWS:
            expected = data["p_full"][v] / (0.5 * data["p_full"][v] + 0.5 * w["p_without"][v])
            assert w["ratio"][v] == pytest.approx(expected)
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
