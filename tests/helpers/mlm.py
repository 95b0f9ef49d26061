"""A tiny random BERT masked LM saved to a folder, for the offline D-SDS prompt-debiasing tests."""

from __future__ import annotations

from pathlib import Path

import torch

# A WordPiece vocabulary holding the template, the view words and the test prompts' words;
# "overhead" is deliberately absent so that it splits into "over" + "##head" (a multi-piece view word).
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "this", "image", "is", "depicting", "a", "view",
              "of", "front", "side", "back", "top", "over", "##head", "smiling", "dog", "cat", "mug", "with",
              "big", "handle", "head", "red", ","]


def build_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised BertForMaskedLM + tokenizer, saved like a real model (save_pretrained)."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(TINY_VOCAB) + "\n")
    tokenizer = BertTokenizer(str(vocab), do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, initializer_range=0.5)
    model = BertForMaskedLM(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
