"""A masked language model that says how likely each view word is for a prompt (D-SDS).

P(v | prompt) is read at the [MASK] of "This image is depicting a [MASK] view of {prompt}"
(docs/methods.md#d-sds; the paper prefixes "This image is depicting a" so that a general LM judges an image),
restricted to the view words and renormalised over them.

Multi-piece view words (e.g. "overhead" -> "over", "##head" in some vocabularies) get one [MASK]
per piece and are scored by the chain rule, left to right:
    P(p1 p2 | ctx) = P(p1 at m1 | m1, m2 masked) * P(p2 at m2 | p1 at m1, m2 masked).
For single-piece words this is exactly the softmax at the one [MASK] (the paper's setting). All
rows (every prompt variant x view word x chain step) go through the model in one batch.
"""

from __future__ import annotations

import torch

from t3d import hub
from t3d.errors import T3dError

DEFAULT_MLM = "bert-base-uncased"
TEMPLATE = "This image is depicting a {mask} view of {prompt}"


class MlmViewScorer:
    """View-word probabilities from a transformers masked LM and its tokenizer."""

    def __init__(self, model, tokenizer, name: str = "mlm"):
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        if tokenizer.mask_token is None:
            raise T3dError(f"masked LM {name!r} has no [MASK] token; prompt debiasing needs a masked LM such as {DEFAULT_MLM}")

    def pieces(self, word: str) -> list[int]:
        ids = self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(word))
        if not ids or self.tokenizer.unk_token_id in ids:
            raise T3dError(f"view word '{word}' is not in the vocabulary of the masked LM {self.name!r}")
        return ids

    def _rows(self, prompts: list[str], view_words: list[str]):
        """Token rows and, per row, (prompt index, view index, mask position, target id)."""
        mask = self.tokenizer.mask_token
        rows, targets = [], []
        for v, word in enumerate(view_words):
            pieces = self.pieces(word)
            for p, prompt in enumerate(prompts):
                ids = self.tokenizer(TEMPLATE.format(mask=" ".join([mask] * len(pieces)), prompt=prompt),
                                     truncation=True)["input_ids"]
                masks = [i for i, tok in enumerate(ids) if tok == self.tokenizer.mask_token_id]
                if len(masks) != len(pieces):  # truncated away: a prompt longer than the LM's context
                    raise T3dError(f"prompt too long for the masked LM {self.name!r}: '{prompt[:60]}...'")
                for j, target in enumerate(pieces):  # chain rule: pieces before j are filled in
                    row = list(ids)
                    for k in range(j):
                        row[masks[k]] = pieces[k]
                    rows.append(row)
                    targets.append((p, v, masks[j], target))
        return rows, targets

    @torch.no_grad()
    def view_probabilities(self, prompts: list[str], view_words: list[str]) -> torch.Tensor:
        """(len(prompts), len(view_words)) P(v | prompt), each row renormalised over the view words."""
        rows, targets = self._rows(prompts, view_words)
        batch = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt")
        device = next(self.model.parameters()).device
        logits = self.model(**{k: v.to(device) for k, v in batch.items()}).logits.float()
        index = torch.tensor([(r, pos) for r, (_, _, pos, _) in enumerate(targets)])
        log_probs = torch.log_softmax(logits[index[:, 0], index[:, 1]], dim=-1)
        picked = log_probs[torch.arange(len(targets)), torch.tensor([t for *_, t in targets])].cpu()
        joint = torch.zeros(len(prompts), len(view_words), dtype=picked.dtype)
        joint.index_put_((torch.tensor([p for p, *_ in targets]), torch.tensor([v for _, v, *_ in targets])),
                         picked, accumulate=True)  # sum of chain-rule log-probabilities
        return torch.softmax(joint, dim=-1)


def load_mlm(name: str = DEFAULT_MLM, local_only: bool = False, device: str | torch.device = "cpu") -> MlmViewScorer:
    """A local folder or a Hub id (t3d/hub.py's policy); `local_only` never touches the network."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    def loader(source: str, **kw):
        return AutoTokenizer.from_pretrained(source, **kw), AutoModelForMaskedLM.from_pretrained(source, **kw)

    tokenizer, model = hub.load(
        loader, name, what="the masked language model for prompt debiasing", local_only=local_only,
        hint="Download it once with network access, or pass --mlm /path/to/folder with a model saved by "
             "save_pretrained (config.json, weights, tokenizer files); in t3d generate, --prompt-debias off "
             "skips debiasing.")
    return MlmViewScorer(model.to(device), tokenizer, name)
