"""RecDreamer's training-free pose classifier p(k | x) (paper section 3.3 and appendix B.1).

For an input image and template images labelled with K pose classes:
- texture similarity  s_tex^j = cos(f_cls, f_cls^j)                                   (eq. 15)
- orientation similarity by patch matching on foreground patches:
    a_{u,u'} = softmax_{u'}(-||f_u - f^j_u'|| / tau_patch)   (soft "most matching patch")
    s_ori^j  = 1 - mean_u sum_u' a_{u,u'} |m_u - m^j_u'|                               (eq. 16)
  with m the horizontal coordinate map of the foreground (-0.5 at its leftmost patch, 0.5 at its
  rightmost, linear between);
- p(k | x) = softmax over classes of (s_tex * s_ori) / tau_pose                        (eq. 17)

Readings where the paper is loose (each said once, here):
- Eq. 16 writes s_{u,u'} = 1 - softmax(distance); its text and Fig. 5 describe the distance to the
  *most matching* patch, which is what a softmax of the *negative* distance selects, so we use that.
  Patch features are L2-normalised first, so tau_patch = 0.01 acts on distances in [0, 2].
- With several templates per class (the analytic prior has dozens per pose bin), the class score
  is the mean over the class's templates of exp(s / tau_pose); with one template per class this is
  exactly eq. 17.
- Foreground (B.1.3): the first PCA component of the *templates'* patch features, fitted once;
  the paper orients its sign with Stable Diffusion cross-attention, we use a cheaper rule that
  holds for centred objects: the image border is background. An image with no foreground patch
  (a blank early render) uses all its patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from t3d.errors import T3dError

POSE_NAMES_4 = ("front", "back", "left", "right")


def pose_class_centres(k: int) -> tuple[list[str], torch.Tensor]:
    """Names and azimuth centres (degrees) of K pose classes. K = 4: front 0, back 180, left 90,
    right -90 (a camera at azimuth +90 sees the object's left side: objects face +x, +z up)."""
    if k == 4:
        return list(POSE_NAMES_4), torch.tensor([0.0, 180.0, 90.0, -90.0])
    centres = torch.arange(k, dtype=torch.float32) * 360.0 / k
    centres = torch.where(centres >= 180.0, centres - 360.0, centres)
    return [f"az{int(round(float(c))):+d}" for c in centres], centres


def pose_class_of(azimuth: torch.Tensor, k: int) -> torch.Tensor:
    """The class (nearest azimuth centre on the circle) of each azimuth in degrees."""
    _, centres = pose_class_centres(k)
    diff = (azimuth.float()[:, None] - centres[None] + 180.0) % 360.0 - 180.0
    return diff.abs().argmin(dim=1)


class PoseClassifier:
    def __init__(self, features, templates: torch.Tensor, labels: torch.Tensor, num_classes: int,
                 tau_patch: float = 0.01, tau_pose: float = 0.05):
        """`features`: image -> (cls, patches); `templates` (M, 3, H, W) in [0, 1]; `labels` (M,)."""
        labels = labels.long().cpu()
        missing = [k for k in range(num_classes) if not (labels == k).any()]
        if missing:
            names, _ = pose_class_centres(num_classes)
            raise T3dError(f"the pose templates have no image of class {', '.join(names[k] for k in missing)}; "
                           f"give at least one template per pose class")
        self.features, self.num_classes = features, num_classes
        self.tau_patch, self.tau_pose = tau_patch, tau_pose
        with torch.no_grad():
            cls, patches = self._extract(templates)
            b, h, w, f = patches.shape
            flat = patches.reshape(-1, f)
            self.pca_mean = flat.mean(0)
            # The first principal direction: top eigenvector of the (F x F) covariance.
            _, _, v = torch.linalg.svd(flat - self.pca_mean, full_matrices=False)
            self.pca_dir = v[0]
            border = torch.ones(h, w, dtype=torch.bool)
            border[1:-1, 1:-1] = False
            proj = (patches - self.pca_mean) @ self.pca_dir
            if proj[:, border].mean() > 0:  # the border is background: make it the negative side
                self.pca_dir = -self.pca_dir
            self.t_cls = F.normalize(cls, dim=-1)
            self.t_pat = F.normalize(patches.reshape(b, h * w, f), dim=-1)
            self.t_fg = self.foreground(patches)  # (M, h*w)
            self.t_coord = self.coordinates(self.t_fg, h, w)
        self.labels = labels.to(self.t_cls.device)
        self.class_onehot = F.one_hot(self.labels, num_classes).float()  # (M, K)

    def _extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features(images)

    def foreground(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, h, w, F) -> (B, h*w) bool: the positive side of the first template PCA component."""
        proj = ((patches.detach() - self.pca_mean) @ self.pca_dir).reshape(patches.shape[0], -1)
        fg = proj > 0
        return torch.where(fg.any(dim=1, keepdim=True), fg, torch.ones_like(fg))

    @staticmethod
    def coordinates(fg: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Horizontal coordinate map m (B, h*w): -0.5 at the leftmost foreground column, 0.5 at the
        rightmost, linear in between (B.1.2)."""
        cols = torch.arange(w, device=fg.device, dtype=torch.float32).repeat(h)[None].expand_as(fg)
        big = torch.full_like(cols, float(w))
        left = torch.where(fg, cols, big).amin(dim=1, keepdim=True)
        right = torch.where(fg, cols, -big).amax(dim=1, keepdim=True)
        return (cols - left) / (right - left).clamp_min(1.0) - 0.5 * (right > left).float()

    def template_similarity(self, images: torch.Tensor) -> torch.Tensor:
        """s_tex * s_ori (B, M) between each image and each template; differentiable in images."""
        cls, patches = self._extract(images)
        b, h, w, f = patches.shape
        fg = self.foreground(patches)  # (B, N)
        coord = self.coordinates(fg, h, w)  # (B, N)
        s_tex = F.normalize(cls, dim=-1) @ self.t_cls.t()  # (B, M)
        pat = F.normalize(patches.reshape(b, h * w, f), dim=-1)
        # Distances between every input patch and every template patch: (B, M, N, N').
        sq = 2 - 2 * torch.einsum("bnf,mpf->bmnp", pat, self.t_pat)
        dist = sq.clamp_min(1e-12).sqrt()
        dist = dist.masked_fill(~self.t_fg[None, :, None, :], float("inf"))
        match = torch.softmax(-dist / self.tau_patch, dim=-1)  # soft most-matching template patch
        coord_gap = (coord[:, None, :, None] - self.t_coord[None, :, None, :]).abs()  # (B, M, N, N')
        per_patch = (match * coord_gap).sum(-1)  # (B, M, N)
        weight = fg.float() / fg.float().sum(dim=1, keepdim=True)
        s_ori = 1 - torch.einsum("bmn,bn->bm", per_patch, weight)
        return s_tex * s_ori

    def log_probs(self, images: torch.Tensor) -> torch.Tensor:
        """log p(k | image) (B, K)."""
        s = self.template_similarity(images) / self.tau_pose  # (B, M)
        counts = self.class_onehot.sum(0)  # (K,)
        # log mean_{j in k} exp(s_j): a logsumexp restricted to each class's templates.
        masked = s[:, :, None] + torch.log(self.class_onehot)[None]  # (B, M, K), -inf off-class
        logits = torch.logsumexp(masked, dim=1) - torch.log(counts)[None]
        return torch.log_softmax(logits, dim=-1)

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        return self.log_probs(images).exp()

