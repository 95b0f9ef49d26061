"""Checkpoints: one safetensors file per save (tensors + JSON metadata), written atomically, that
prove themselves on every load.

Loading never executes code: safetensors holds raw tensors only, and the metadata is JSON. The
metadata carries a checksum of every tensor's bytes and one of the metadata itself; a file whose
bytes changed (a flipped block, a truncation) fails verification and is never used silently:
commands fall back to the newest checkpoint that verifies and say so, or stop with one line.
Layout of the tensor keys: `field/...`, `occupancy/...`, `guidance/...`, `optim/<param>/<slot>`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from t3d.errors import T3dError
from t3d.io import atomic_write_bytes
from t3d.run.folder import CHECKPOINT_DIR, run_dir_of
from t3d.state_dicts import flatten_optimizer

_NAME = re.compile(r"^step_(\d{6,})\.safetensors$")
CORRUPT_SUFFIX = ".corrupt"
# The metadata value starts "blake2b:<digest of the JSON body>\n" before the body itself.
DIGEST_PREFIX = "blake2b:"


class CorruptCheckpoint(T3dError):
    pass


def checkpoint_name(step: int) -> str:
    return f"step_{step:06d}.safetensors"


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def tensor_digest(tensor: torch.Tensor) -> str:
    return digest(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def save_checkpoint(run_dir: Path, step: int, modules: dict[str, torch.nn.Module | dict],
                    optimizer: torch.optim.Optimizer, meta: dict, keep: int = 3) -> Path:
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in modules.items():
        state = module if isinstance(module, dict) else module.state_dict()
        for key, value in state.items():
            tensors[f"{prefix}/{key}"] = value.detach().cpu().contiguous()
    optim_tensors, param_groups = flatten_optimizer(optimizer)
    tensors.update({f"optim/{k}": v.cpu().contiguous() for k, v in optim_tensors.items()})
    checksums = {key: tensor_digest(value) for key, value in tensors.items()}
    # Sorted keys: a resumed run's optimizer state comes back in another order, and its checkpoint
    # must still be the same bytes as the uninterrupted run's.
    body = json.dumps({**meta, "step": step, "param_groups": param_groups, "checksums": checksums}, sort_keys=True)
    path = run_dir / CHECKPOINT_DIR / checkpoint_name(step)
    # One metadata key: safetensors writes its metadata map in an unspecified order, and a second
    # key would make the same checkpoint different bytes from one process to the next.
    atomic_write_bytes(path, st_save(tensors, metadata={"t3d": f"{DIGEST_PREFIX}{digest(body.encode())}\n{body}"}))
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def _verify(path: Path, tensors: dict[str, torch.Tensor], header: dict) -> dict:
    """The checkpoint's metadata once its bytes are proven; CorruptCheckpoint otherwise."""
    body, stored = header["t3d"], header.get("t3d_digest")  # the digest's own key: older checkpoints
    if body.startswith(DIGEST_PREFIX):
        stored, body = body[len(DIGEST_PREFIX):].split("\n", 1)
    if stored is None:  # written before checkpoints carried checksums: nothing to verify against
        return json.loads(body)
    if digest(body.encode()) != stored:
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt (its metadata fails its checksum)")
    meta = json.loads(body)
    checksums = meta.get("checksums", {})
    if set(checksums) != set(tensors):
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt (its tensors do not match its index)")
    for key, tensor in tensors.items():
        if tensor_digest(tensor) != checksums[key]:
            raise CorruptCheckpoint(f"checkpoint {path} is corrupt (checksum mismatch in {key})")
    return meta


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of one verified checkpoint; a damaged file is a CorruptCheckpoint."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise T3dError(f"checkpoint not found: {path}") from None
    except OSError as exc:
        raise T3dError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len])["__metadata__"]
        return tensors, _verify(Path(path), tensors, header)
    except (SafetensorError, ValueError, KeyError, TypeError, OverflowError) as exc:
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt or truncated "
                                f"({str(exc).splitlines()[0][:80]})") from None


@dataclass
class Loaded:
    path: Path
    tensors: dict[str, torch.Tensor]
    meta: dict
    skipped: list[str]  # one line per newer checkpoint that failed verification

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))


def load_newest_verified(run_dir: Path, set_aside: bool = False,
                         note: Optional[Callable[[str], None]] = None) -> Optional[Loaded]:
    """The newest checkpoint of the run that verifies (None when the run has none at all).

    A failing one is reported through `note` and, with `set_aside` (the caller holds the run's
    lock), renamed to `<name>.corrupt` so it is never picked again and nothing is deleted. When
    checkpoints exist but none verifies, that is an error."""
    found, skipped = list_checkpoints(run_dir), []
    for path in reversed(found):
        try:
            tensors, meta = read_checkpoint(path)
        except CorruptCheckpoint as exc:
            skipped.append(str(exc))
            if set_aside:
                path.rename(path.with_name(path.name + CORRUPT_SUFFIX))
            continue
        if skipped and note is not None:
            kept = " (kept as *.safetensors.corrupt)" if set_aside else ""
            note(f"{skipped[0]}; using {path.name} instead{kept}")
        return Loaded(path, tensors, meta, skipped)
    if found:
        raise CorruptCheckpoint(f"no checkpoint in {Path(run_dir) / CHECKPOINT_DIR} verifies: {'; '.join(skipped)}")
    return None


def load_target(target: str | Path, note: Optional[Callable[[str], None]] = None) -> tuple[Path, Loaded]:
    """A run folder (its newest verified checkpoint) or one checkpoint file (which must verify)."""
    target = Path(target)
    if target.is_dir():
        loaded = load_newest_verified(target, note=note)
        if loaded is None:
            raise T3dError(f"no checkpoint in {target / CHECKPOINT_DIR}")
        return target, loaded
    if target.is_file():
        tensors, meta = read_checkpoint(target)
        return run_dir_of(target), Loaded(target, tensors, meta, [])
    raise T3dError(f"no run folder or checkpoint at {target}")
