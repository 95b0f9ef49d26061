"""The built-in analytic prior: the exact score of a smoothed mixture of posed reference images.

Each reference x_i in [-1, 1]^D becomes a Gaussian N(x_i, h^2 I) with prior mass pi_i, so the
noised marginal stays closed form:
    p_t(x) = sum_i pi_i N(x; a_t x_i, (a_t^2 h^2 + s_t^2) I)
    eps_hat(x_t) = s_t (x_t - a_t D(x_t)) / (a_t^2 h^2 + s_t^2),  D = sum_i w_i x_i,
    w = softmax(log pi_i - |x_t - a_t x_i|^2 / (2 (a_t^2 h^2 + s_t^2))).
With h = 0 this is the raw empirical prior, which snaps every view to its nearest reference at
all but the highest noise levels; the bandwidth keeps the posterior soft (docs/analytic-prior.md#bandwidth).

Conditioning is a vector of log pi over the references, built from the prompt:
- the object (prompt keyword) selects its references; "" (unconditional) is all objects;
- pose bias: `front_mass` of each object's mass sits on |azimuth| < front_halfwidth, like the
  front-view bias of text-to-image models;
- a view phrase ("front view", "side view", "back view", "overhead view"/"top view") mixes in
  the references of that view bin with weight `adherence`; at adherence 1 references outside
  the bin are masked with -inf (a tiny weight would lose to the likelihood gaps).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from t3d.errors import T3dError
from t3d.priors.base import Framing, PosedReferences, Prior
from t3d.priors.config import AnalyticConfig
from t3d.priors.mixture import mixture_eps, mixture_posterior
from t3d.priors.references import ReferenceSet, builtin_references, folder_references
from t3d.priors.schedule import NoiseSchedule
from t3d.prompts.views import VIEW_NAMES, view_bin_of

VIEW_BINS = VIEW_NAMES
_VIEW_PATTERN = re.compile(r"\b(front|side|back|overhead|top)\s+view\b", re.IGNORECASE)


def sd_alphas_cumprod(num_timesteps: int = 1000) -> torch.Tensor:
    """Stable Diffusion's scaled-linear schedule, so timesteps mean the same for both priors."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, num_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, dim=0).float()


def parse_views(prompt: str) -> list[int]:
    """Every view bin a prompt names, in order, without repeats ("..., from side view, from back
    view" names two: RecDreamer's auxiliary phrases widen the distribution to both)."""
    bins = []
    for match in _VIEW_PATTERN.finditer(prompt):
        word = match.group(1).lower()
        b = VIEW_BINS.index("overhead" if word == "top" else word)
        if b not in bins:
            bins.append(b)
    return bins


def parse_view(prompt: str) -> int | None:
    match = _VIEW_PATTERN.search(prompt)
    if match is None:
        return None
    word = match.group(1).lower()
    return VIEW_BINS.index("overhead" if word == "top" else word)


# D-SDS clip range for this prior (start, end). It works in [-1, 1] pixels at 32 px; the paper's pixel
# numbers (0.5 -> 2, for DeepFloyd IF) do not transfer, so the range was measured: |w(t)(eps_p - n)|
# elementwise in a 200-step `--method sds` run (CFG 100, "a smiling head") has quantiles q50 0.11,
# q75 4.3, q90 24.6, q95 41.7 over the run (first third: q50 1.8, q75 18, q90 40; last third: q90
# 0.98, q99 9.2). 5 -> 20 keeps the paper's 1:4 ratio and clips the early, large scores hard and the
# late ones rarely: clipping is active, but not on everything.
PIXEL_SCORE_CLIP = (5.0, 20.0)


class AnalyticPrior(Prior):
    name = "analytic"
    latent_channels = 3

    def __init__(self, cfg: AnalyticConfig, device: torch.device | str = "cpu", refs: ReferenceSet | None = None):
        """References come from `cfg.source` (built-in objects or a folder) unless given."""
        self.cfg = cfg
        self.device = torch.device(device)
        if refs is None and cfg.source == "builtin":
            refs = builtin_references(cfg.resolution, cfg.azimuth_step, tuple(cfg.elevations),
                                      cfg.jitter_copies, cfg.distance, cfg.fovy)
        elif refs is None:
            refs = folder_references(cfg.source, cfg.resolution)
        self.refs: ReferenceSet = refs
        self.image_size = self.latent_size = refs.images.shape[-1]
        self.schedule = NoiseSchedule(sd_alphas_cumprod().to(self.device))
        # Flattened references in the prior's [-1, 1] space, and their squared norms for fast distances.
        self.ref_x = (refs.images * 2 - 1).reshape(len(refs), -1).to(self.device)
        self.ref_sqnorm = (self.ref_x**2).sum(-1)
        self.ref_bin = view_bin_of(refs.azimuth, refs.elevation, cfg.front_halfwidth).to(self.device)
        self.view_gap = self._view_gaps()
        self._cache: dict[str, torch.Tensor] = {}
        self._energy_rows: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _view_gaps(self) -> torch.Tensor:
        """Per reference (N,): the median, over its object's references, of the squared distance to
        the nearest reference of the same object in another view bin: how far apart views are."""
        gaps = torch.zeros(len(self.refs), device=self.device)
        for g in range(len(self.refs.group_names)):
            mine = (self.refs.group == g).nonzero().squeeze(1).to(self.device)
            bins = self.ref_bin[mine]
            if bins.unique().numel() < 2:
                continue
            sq = torch.cdist(self.ref_x[mine], self.ref_x[mine]) ** 2
            sq = torch.where(bins[:, None] != bins[None], sq, torch.full_like(sq, float("inf")))
            gaps[mine] = sq.amin(1).median()
        return gaps

    # ------------------------------------------------------------------ capabilities
    def framing(self) -> Framing:
        # The references are framed at one distance and fov; matching them keeps the object's
        # size in the render equal to its size in the prior.
        return Framing(self.image_size, (self.cfg.distance,) * 2, (self.cfg.fovy,) * 2)

    def default_score_clip(self) -> tuple[float, float]:
        return PIXEL_SCORE_CLIP

    def object_keywords(self) -> set[str]:
        # The object is selected by a keyword: dropping it would condition a view on the wrong references.
        return {w for words in self.refs.group_words for w in words}

    def default_score_model(self) -> str:
        return "kernel"  # a network trained from scratch lags the renders (kernel_score.py)

    def render_kernel_bandwidth(self) -> float:
        return float(self.cfg.bandwidth)

    def pixel_feature_mean(self) -> torch.Tensor:
        return self.refs.images.mean(0)

    def mixture_azimuths(self) -> torch.Tensor:
        return self.refs.azimuth

    def posed_references(self, prompt: str) -> PosedReferences | None:
        group = self.group_of(prompt)
        if group is None:
            return None
        mask = self.refs.group == group
        part, part_azimuth = (self.refs.group_parts or [(None, None)] * (group + 1))[group]
        return PosedReferences(self.refs.images[mask], self.refs.azimuth[mask], self.refs.elevation[mask],
                               self.cfg.front_halfwidth, self.cfg.distance, self.cfg.fovy, part, part_azimuth)

    def samples(self, prompt: str, n: int, generator: torch.Generator) -> torch.Tensor:
        """n exact draws from p(x | prompt): a reference by its mass, plus the kernel noise."""
        weights = torch.softmax(self.log_weights(prompt).double(), dim=0).cpu()
        idx = torch.multinomial(weights, n, replacement=True, generator=generator)
        x = self.ref_x[idx].cpu() + self.cfg.bandwidth * torch.randn(n, self.ref_x.shape[1], generator=generator)
        return ((x + 1) / 2).clamp(0, 1).reshape(n, 3, self.image_size, self.image_size)

    # ------------------------------------------------------------------ prompts -> log pi
    def group_of(self, prompt: str) -> int | None:
        """The object a prompt names (whole-word keyword match), None if it names none."""
        words = set(re.findall(r"[a-z0-9]+", prompt.lower()))
        for gi, keys in enumerate(self.refs.group_words):
            if keys and words & set(keys):
                return gi
        if len(self.refs.group_names) == 1:
            return 0  # a single-object folder: every prompt means that object
        return None

    def check_prompt(self, prompt: str) -> None:
        if self.group_of(prompt) is None:
            known = "; ".join(f"{name} ({', '.join(words)})"
                              for name, words in zip(self.refs.group_names, self.refs.group_words))
            raise T3dError(f"the analytic prior knows no object in '{prompt}'; name one of: {known}")

    def log_weights(self, prompt: str) -> torch.Tensor:
        """log pi over references for one prompt ("" = unconditional)."""
        cfg = self.cfg
        if prompt.strip() == "":
            groups = torch.ones(len(self.refs), dtype=torch.bool, device=self.device)
            n_groups = len(self.refs.group_names)
        else:
            gi = self.group_of(prompt)
            if gi is None:
                self.check_prompt(prompt)
            groups = (self.refs.group == gi).to(self.device)
            n_groups = 1
        mass = torch.zeros(len(self.refs), device=self.device, dtype=torch.float64)
        for g in range(len(self.refs.group_names)):
            members = groups & (self.refs.group == g).to(self.device)
            if not members.any():
                continue
            if prompt.strip() == "" and cfg.uncond_pose == "uniform":
                mass[members] += 1.0 / members.sum() / n_groups
            else:
                mass += self._pose_biased(members) / n_groups
        # Each named view mixes in its bin; several named views share the adherence equally.
        bins = [v for v in parse_views(prompt) if (groups & (self.ref_bin == v)).any()] if prompt.strip() else []
        if bins:  # a view with no references (e.g. overhead) cannot condition
            in_any = torch.zeros_like(groups)
            mixed = torch.zeros_like(mass)
            for view in bins:
                in_bin = groups & (self.ref_bin == view)
                binned = torch.where(in_bin, mass, torch.zeros_like(mass))
                mixed += binned / binned.sum() / len(bins)
                in_any |= in_bin
            mass = (1 - cfg.adherence) * mass + cfg.adherence * mixed
            if cfg.adherence >= 1.0:
                mass = torch.where(in_any, mass, torch.zeros_like(mass))
        return torch.log(mass).float()  # log 0 = -inf: masked, not merely unlikely

    def view_energy(self, prompt: str) -> torch.Tensor:
        """(N,) squared-distance penalty on references outside the view bin(s) a prompt names.

        A view phrase mixes its bin's references into the mass (log_weights), but a mass ratio only
        matters where the mixture's components overlap, t > ~0.85: below that the posterior is the
        render's nearest reference by tens of nats, so a blob that is nearest the compact front
        views of an animal stays "front" from every side whatever the prompts say (docs/janus-
        findings.md). A real text-to-image model conditions at every noise level; here the phrase
        also makes the other references look farther by adherence / (1 - adherence) view gaps
        (the object's typical squared distance between neighbouring view bins): at adherence 0.5
        an undecided render follows its view prompt, a view already closer to another bin's
        reference by more than one view gap keeps it (a formed Janus face can persist).
        """
        adherence = self.cfg.adherence
        energy = torch.zeros(len(self.refs), device=self.device)
        if not prompt.strip() or adherence <= 0 or adherence >= 1:
            return energy  # adherence 1 masks instead (log_weights)
        bins = parse_views(prompt)
        if not bins:
            return energy
        in_any = torch.zeros(len(self.refs), dtype=torch.bool, device=self.device)
        for view in bins:
            in_any |= self.ref_bin == view
        return torch.where(in_any, energy, self.view_gap * adherence / (1 - adherence))

    def _pose_biased(self, members: torch.Tensor) -> torch.Tensor:
        front = members & (self.refs.azimuth.abs().to(self.device) < self.cfg.front_halfwidth)
        rest = members & ~front
        mass = torch.zeros(len(self.refs), device=self.device, dtype=torch.float64)
        if front.any() and rest.any():
            mass[front] = self.cfg.front_mass / front.sum()
            mass[rest] = (1 - self.cfg.front_mass) / rest.sum()
        else:
            mass[members] = 1.0 / members.sum()
        return mass

    def embed(self, prompts: list[str]) -> torch.Tensor:
        """(B, N) log pi over the references. A prompt with a view energy (`view_energy`) has its
        row remembered with that energy, so `eps` finds the energy of any row equal to it."""
        for p in prompts:
            if p not in self._cache:
                self._cache[p] = self.log_weights(p)
                energy = self.view_energy(p)
                if energy.any():
                    self._energy_rows.append((self._cache[p], energy))
        return torch.stack([self._cache[p] for p in prompts])

    def _split(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """log pi and the view energy of each row (rows equal to no embedded view prompt: none).
        The energy travels beside the embedding so that an embedding stays log pi for every caller
        (CFG, Perp-Neg's mixtures, the pose posterior); rows are matched by exact equality."""
        if not self._energy_rows:
            return cond, None
        rows = torch.stack([r for r, _ in self._energy_rows]).to(cond)
        energies = torch.stack([e for _, e in self._energy_rows]).to(cond)
        match = (cond[:, None, :] == rows[None]).all(-1).to(cond.dtype)  # (B, K); -inf == -inf
        match = match / match.sum(1, keepdim=True).clamp_min(1.0)
        return cond, match @ energies

    # ------------------------------------------------------------------ image space
    def encode(self, rgb: torch.Tensor) -> torch.Tensor:
        if rgb.shape[-1] != self.image_size:
            rgb = F.interpolate(rgb, size=(self.image_size,) * 2, mode="bilinear", align_corners=False,
                                antialias=True)
        return rgb * 2 - 1

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        return ((x0 + 1) / 2).clamp(0, 1)

    # ------------------------------------------------------------------ the score
    def posterior(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Posterior weights w (B, N) over references given x_t."""
        a2 = self.alphas_cumprod[t].to(torch.float32)[:, None]
        log_weights, energy = self._split(cond)
        return mixture_posterior(x_t.reshape(x_t.shape[0], -1).float(), a2, self.ref_x, self.ref_sqnorm, log_weights,
                                 self.cfg.bandwidth, energy)

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """E[x_i | x_t]: the posterior mean of the reference centres (B, C, H, W)."""
        w = self.posterior(x_t, t, cond)
        return (w @ self.ref_x).view_as(x_t)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        a2 = self.alphas_cumprod[t].to(torch.float32)[:, None]
        log_weights, energy = self._split(cond)
        eps = mixture_eps(x_t.reshape(x_t.shape[0], -1).float(), a2, self.ref_x, self.ref_sqnorm, log_weights,
                          self.cfg.bandwidth, energy)
        return eps.view_as(x_t).to(x_t.dtype)
