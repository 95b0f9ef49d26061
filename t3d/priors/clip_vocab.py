"""CLIP byte-level BPE tokenizer folders written offline (vocab.json, merges.txt, configs).

CLIP's vocabulary is the 256 byte symbols, the same 256 again with the end-of-word marker
"</w>", one token per merge, and the two special tokens; the real one has 48894 merges, so
512 + 48894 + 2 = 49408 ids. No tokenizer can be downloaded here, so `synthetic_merges` makes
merges of the real count that are valid BPE (each merge joins two tokens that exist before it,
and makes a token that did not): lower-case letter n-grams, breadth first, each both inside a word
and at a word's end. Any text tokenises (unknown characters fall back to byte symbols); the ids
are not the real CLIP ids, which only matters to trained weights, and random weights have none.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
END_OF_WORD = "</w>"
CLIP_VOCAB_SIZE = 49408
CLIP_MERGES = CLIP_VOCAB_SIZE - 2 * 256 - 2  # 48894, the length of CLIP's merges.txt
MAX_TOKENS = 77  # CLIP's context length


def _printable_bytes() -> list[int]:
    """Bytes that stand for themselves in byte-level BPE: printable latin-1, no space or controls."""
    return list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))


def _symbol_of_byte() -> dict[int, str]:
    """GPT-2/CLIP's byte -> stand-in character: printable bytes map to themselves, the others are
    shifted to code points 256+ (in byte order) so that no symbol is whitespace or a control."""
    keep = set(_printable_bytes())
    symbols, shifted = {}, 0
    for b in range(256):
        if b in keep:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + shifted)
            shifted += 1
    return symbols


def clip_byte_symbols() -> list[str]:
    """The 256 byte symbols in CLIP's vocabulary order: printable bytes first, then the shifted
    ones; so "!" is id 0, which SD 2.x's tokenizer uses as its pad token."""
    symbols = _symbol_of_byte()
    shifted = [b for b in range(256) if b not in set(_printable_bytes())]
    return [symbols[b] for b in _printable_bytes() + shifted]


def byte_order_symbols() -> list[str]:
    """The 256 byte symbols in byte order (the tiny test tokenizer's order; its ids stay as they are)."""
    symbols = _symbol_of_byte()
    return [symbols[b] for b in range(256)]


def synthetic_merges(count: int = CLIP_MERGES) -> list[tuple[str, str]]:
    """`count` valid BPE merges over lower-case letters (see module docstring), in rank order."""
    letters = string.ascii_lowercase
    merges: list[tuple[str, str]] = []
    prefixes = list(letters)  # in-word tokens to extend, shortest first
    i = 0
    while len(merges) < count:
        prefix = prefixes[i]
        i += 1
        for c in letters:
            merges.append((prefix, c))
            prefixes.append(prefix + c)
            merges.append((prefix, c + END_OF_WORD))
    return merges[:count]


@dataclass(frozen=True)
class TokenizerIds:
    vocab_size: int
    bos_id: int
    eos_id: int
    pad_id: int


def write_clip_tokenizer(folder: str | Path, merges: list[tuple[str, str]], symbols: list[str],
                         pad_token: str = EOS, max_length: int = MAX_TOKENS) -> TokenizerIds:
    """Write a CLIPTokenizer folder in the layout of SD's `tokenizer/`; return its size and ids.

    `pad_token` is "<|endoftext|>" in SD 1.x and "!" in SD 2.x (the real repos' choice).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokens = symbols + [s + END_OF_WORD for s in symbols] + [a + b for a, b in merges] + [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("merges must each make a token that is not already in the vocabulary")
    if pad_token not in vocab:
        raise ValueError(f"pad token {pad_token!r} is not in the vocabulary")
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    (folder / "merges.txt").write_text(merges_text, encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": pad_token}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=1))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "do_lower_case": True,
              "add_prefix_space": False, "errors": "replace", **special}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return TokenizerIds(len(tokens), vocab[BOS], vocab[EOS], vocab[pad_token])
