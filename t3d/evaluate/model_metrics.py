"""Metrics that need a model's weights, each run only when its model is named and loads.

- `--clip-model`: CLIP distance, per-azimuth CLIP similarity with the view prompts (plot, like
  D-SDS fig. 5), cEnt (CLIP classifier over "<prompt>, from front/side/back view", RecDreamer).
- `--classifier-model` (any transformers image classifier, e.g. a ViT): IQ / IV / IG (ESD),
  A-LPIPS, and FID of renders against prior samples (`--fid-samples N`, analytic prior).
  No LPIPS weights are installable here, so A-LPIPS uses an LPIPS-style distance on the
  classifier's hidden states (unit-normalised per token, squared differences averaged over tokens,
  summed over layers) without LPIPS's learned per-channel weights; the metrics say so.
  FID uses the classifier's mean-pooled last hidden state instead of Inception-v3 pool features.
- `--pose-classifier`: pEnt, through the hook in pose_entropy.py (the USD pose classifier).
A model that cannot be loaded is skipped with a note naming it, like a model not asked for.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from t3d import hub
from t3d.errors import T3dError
from t3d.evaluate import formulas
from t3d.hub import ModelUnavailable

_HINT = "Pass a local folder saved with save_pretrained, or leave the option out to skip these metrics."

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CENT_VIEWS = ("front", "side", "back")


def _prepare(rgb: torch.Tensor, size: int, mean, std) -> torch.Tensor:
    x = F.interpolate(rgb, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    mean = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x.clamp(0, 1) - mean) / std


def _features(output) -> torch.Tensor:
    """transformers returns a tensor or (in newer versions) an output object with pooler_output."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClipScorer:
    def __init__(self, name: str):
        from transformers import AutoTokenizer, CLIPModel

        def loader(source: str, **kw):
            return CLIPModel.from_pretrained(source, **kw).eval(), AutoTokenizer.from_pretrained(source, **kw)

        self.model, self.tokenizer = hub.load(loader, name, what="CLIP model", hint=_HINT)
        self.size = self.model.config.vision_config.image_size

    @torch.no_grad()
    def images(self, rgb: torch.Tensor) -> torch.Tensor:
        pixels = _prepare(rgb, self.size, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)
        return F.normalize(_features(self.model.get_image_features(pixel_values=pixels)), dim=-1)

    @torch.no_grad()
    def texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        return F.normalize(_features(self.model.get_text_features(**tokens)), dim=-1)


@torch.no_grad()
def clip_metrics(orbit, prompt: str, scorer: ClipScorer) -> tuple[dict, dict]:
    from t3d.evaluate.plots import Series, plot

    img = scorer.images(orbit.rgb)
    prompt_emb = scorer.texts([prompt])[0]
    view_words = ("front", "side", "back", "overhead")
    view_emb = scorer.texts([f"{prompt}, {w} view" for w in view_words])
    per_view = (img @ view_emb.t()).tolist()  # (V, 4) cosine similarities
    per_azimuth = {w: [round(row[k], 5) for row in per_view] for k, w in enumerate(view_words)}
    cent_emb = scorer.texts([f"{prompt}, from {w} view" for w in CENT_VIEWS])
    probs = torch.softmax(scorer.model.logit_scale.exp() * img @ cent_emb.t(), dim=-1)
    az = orbit.azimuth.tolist()
    ys = [v for vals in per_azimuth.values() for v in vals]
    lo, hi = min(ys), max(ys)
    figure = plot([Series(w, az, per_azimuth[w], points=False, line=True) for w in view_words],
                  "CLIP similarity with view prompts", (-180, 180), (lo - 1e-3, hi + 1e-3), "azimuth (deg)")
    return ({"clip_distance": formulas.clip_distance(img, prompt_emb), "c_ent": formulas.averaged_entropy(probs),
             "c_ent_max": float(torch.log(torch.tensor(float(len(CENT_VIEWS))))),
             "azimuth": [round(a, 2) for a in az], "per_azimuth_similarity": per_azimuth},
            {"clip_azimuth": figure})


class ImageClassifier:
    def __init__(self, name: str):
        from transformers import AutoModelForImageClassification

        self.model = hub.load(AutoModelForImageClassification.from_pretrained, name, what="image classifier",
                              hint=_HINT).eval()
        self.mean, self.std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
        try:
            from transformers import AutoImageProcessor

            proc = hub.load(AutoImageProcessor.from_pretrained, name, what="image processor", hint="")
            self.mean, self.std = tuple(proc.image_mean), tuple(proc.image_std)
        except (T3dError, AttributeError, TypeError):
            pass  # no processor config: the ViT convention (0.5, 0.5)
        size = getattr(self.model.config, "image_size", 224)
        self.size = size if isinstance(size, int) else int(size[0])

    @torch.no_grad()
    def run(self, rgb: torch.Tensor, batch: int = 32):
        """Class probabilities (V, K) and hidden states (list of (V, tokens, C))."""
        probs, hidden = [], []
        for start in range(0, rgb.shape[0], batch):
            out = self.model(pixel_values=_prepare(rgb[start:start + batch], self.size, self.mean, self.std),
                             output_hidden_states=True)
            probs.append(torch.softmax(out.logits.double(), dim=-1))
            hidden.append([h.flatten(2).transpose(1, 2) if h.dim() == 4 else h for h in out.hidden_states])
        return torch.cat(probs), [torch.cat(layer) for layer in zip(*hidden)]


def feature_distance(hidden_a: list[torch.Tensor], hidden_b: list[torch.Tensor]) -> torch.Tensor:
    """LPIPS-style distance per pair, without learned weights (see module doc)."""
    total = 0.0
    for a, b in zip(hidden_a, hidden_b):
        total = total + ((F.normalize(a, dim=-1) - F.normalize(b, dim=-1)) ** 2).sum(-1).mean(-1)
    return total


def classifier_metrics(orbit, classifier: ImageClassifier, name: str, prior, prompt: str, fid_samples: int,
                       notes: list[str]) -> dict:
    probs, hidden = classifier.run(orbit.rgb)
    out = {"inception": {**formulas.inception_scores(probs), "classifier": name}}
    rolled = [torch.roll(h, -1, dims=0) for h in hidden]
    out["a_lpips"] = {"a_lpips": float(feature_distance(hidden, rolled).mean()),
                      "distance": f"unweighted LPIPS-style distance on {name} hidden states (no LPIPS weights)"}
    if fid_samples > 0:
        samples = prior.samples(prompt, fid_samples, torch.Generator().manual_seed(0)) if prior is not None else None
        if samples is None:
            notes.append("FID skipped: it needs exact samples of the prior (the analytic prior has them)")
        else:
            _, sample_hidden = classifier.run(samples)
            out["fid"] = {"fid": formulas.frechet_distance(hidden[-1].mean(1).numpy(), sample_hidden[-1].mean(1).numpy()),
                          "samples": fid_samples, "features": f"{name} mean-pooled last hidden state"}
    return out


def _load(kind: str, loader, name: str, notes: list[str]):
    try:
        return loader(name)
    except ModelUnavailable as exc:
        notes.append(f"{kind} skipped: cannot load '{name}' ({exc.reason})")
        return None


def model_metrics(orbit, cfg, opts, prior, notes: list[str]) -> dict:
    out: dict = {"_plots": {}}
    if opts.clip_model is None:
        notes.append("CLIP distance, per-azimuth CLIP similarity and cEnt skipped: no --clip-model")
    else:
        scorer = _load("CLIP metrics", ClipScorer, opts.clip_model, notes)
        if scorer is not None:
            out["clip"], plots = clip_metrics(orbit, cfg.prompt, scorer)
            out["clip"]["model"] = opts.clip_model
            out["_plots"].update(plots)
    if opts.classifier_model is None:
        notes.append("IQ / IV / IG, A-LPIPS and FID skipped: no --classifier-model")
    else:
        classifier = _load("IQ / IV / IG, A-LPIPS and FID", ImageClassifier, opts.classifier_model, notes)
        if classifier is not None:
            out.update(classifier_metrics(orbit, classifier, opts.classifier_model, prior, cfg.prompt,
                                          opts.fid_samples, notes))
    from t3d.evaluate.pose_entropy import pose_metrics

    out.update(pose_metrics(orbit, opts.pose_classifier, notes))
    return out
