"""`--model auto` (the default): Stable Diffusion where it can run well, else the built-in prior.

It resolves to the default Stable Diffusion model (`--model sd`) when a CUDA device is present
and the model is in the local Hugging Face cache (or a local folder), or can be downloaded now;
otherwise to the built-in analytic prior, which needs no weights and no network. The run's
config.yaml records the resolved model, so a replay uses the same prior. The CUDA check and the
model lookup are module functions, so tests can stand in for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

AUTO = "auto"


@dataclass(frozen=True)
class Resolved:
    model: str
    line: str  # for the run's header: what was chosen, why, and how to force the other


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def sd_model_available(model: str) -> tuple[bool, str]:
    """(usable now, how we know) for a Stable Diffusion id or folder."""
    from t3d import hub

    if hub.looks_like_path(model):
        ok = (Path(model).expanduser() / "unet").is_dir()
        return ok, "the local folder exists" if ok else "its folder has no unet/"
    if hub.in_local_cache(model, "model_index.json"):
        return True, "it is in the local Hugging Face cache"
    if hub.downloadable(model, "model_index.json"):
        return True, "it can be downloaded"
    return False, "it is not in the local Hugging Face cache and cannot be downloaded now"


def resolve(model: str) -> Resolved:
    if model != AUTO:
        return Resolved(model, "")
    from t3d.priors.stable_diffusion import default_sd_model

    sd = default_sd_model()
    if not cuda_available():
        return Resolved("analytic", "prior: the built-in analytic prior (--model auto: no CUDA GPU here; "
                                    "--model sd uses Stable Diffusion anyway, slowly)")
    usable, why = sd_model_available(sd)
    if usable:
        return Resolved(sd, f"prior: Stable Diffusion {sd} (--model auto: a CUDA GPU, and {why}; "
                            f"--model analytic uses the built-in prior)")
    return Resolved("analytic", f"prior: the built-in analytic prior (--model auto: Stable Diffusion {sd}: "
                                f"{why}; --model sd to insist, or --model /path/to/diffusers-folder)")


SD_HINT = ("or use Stable Diffusion, which draws anything: --model sd (best on a CUDA GPU; the weights "
           "come from the Hugging Face cache or the network) or --model /path/to/diffusers-folder")
