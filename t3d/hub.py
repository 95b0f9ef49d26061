"""One policy for loading every pretrained model (Stable Diffusion, the masked LM of prompt
debiasing, DINOv2 pose features, evaluate's CLIP and classifier).

- A local folder is loaded as it is; a missing folder or file is reported, never downloaded.
- A Hub id is looked up in the local Hugging Face cache first, with no network request at all
  (a cached model starts instantly and works on a machine that lost its connection); only a
  model that is not cached is downloaded, and never when HF_HUB_OFFLINE=1 or `local_only`.
- Whatever fails becomes one `T3dError` line: what could not be loaded, why (in words a user
  can act on), where it was looked for, and what to do instead.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from t3d.errors import T3dError

OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


class ModelUnavailable(T3dError):
    """A model that cannot be loaded; `reason` is the short why (for notes that skip a feature)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def looks_like_path(source: str) -> bool:
    """Hub ids are "name" or "owner/name"; anything else path-shaped is meant as a local folder."""
    return (Path(source).expanduser().exists() or source.startswith((".", "/", "~"))
            or "\\" in source or source.count("/") > 1)


def offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read now (not only when huggingface_hub was imported)."""
    if any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on") for k in OFFLINE_ENV):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return False


def cache_location() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return "~/.cache/huggingface/hub"


def load_errors() -> tuple[type[BaseException], ...]:
    """What the hub libraries raise for missing/unreachable files: mostly OSError and ValueError
    (HFValidationError for malformed ids), plus EntryNotFoundError, which is not an OSError in
    every huggingface_hub version."""
    types: list[type[BaseException]] = [OSError, ValueError]
    try:
        from huggingface_hub.errors import EntryNotFoundError

        types.append(EntryNotFoundError)
    except ImportError:
        pass
    return tuple(types)


def _chain(err: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200].rstrip(".")


def why_hub_failed(err: BaseException) -> str:
    """Turn the hub libraries' nested errors into one reason a user can act on."""
    try:
        from huggingface_hub import errors as hub
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers and transformers
        hub = None
    chain = list(_chain(err))

    def has(name: str) -> bool:
        cls = getattr(hub, name, None) if hub is not None else None
        return cls is not None and any(isinstance(e, cls) for e in chain)

    if has("OfflineModeIsEnabled") or (offline() and has("LocalEntryNotFoundError")):
        return "it is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading it"
    if has("GatedRepoError"):
        return "the model is gated on the Hugging Face Hub (accept its licence there and log in with `hf auth login`)"
    if has("RepositoryNotFoundError"):
        return "no such model on the Hugging Face Hub (or it is private: log in with `hf auth login`)"
    if has("LocalEntryNotFoundError"):
        return ("the Hugging Face Hub could not be reached and the model is not in the local cache "
                "(on a machine without network, set HF_HUB_OFFLINE=1 to skip the retries)")
    if has("EntryNotFoundError"):
        return "the repository lacks a file this kind of model needs"
    return first_line(err)


def load(loader: Callable[..., Any], source: str, *, what: str, hint: str, local_only: bool = False,
         required: tuple[str, ...] = ()) -> Any:
    """`loader(source_or_folder, local_files_only=...)` under the policy above.

    `what` names the model in errors ("Stable Diffusion model"), `hint` says what to do instead,
    `required` lists entries a local folder must contain (e.g. "unet/" or "config.json").
    """
    def fail(reason: str, looked_for: str) -> ModelUnavailable:
        return ModelUnavailable(f"cannot load {what} {source!r}: {reason}. Looked for {looked_for}. {hint}", reason)

    if looks_like_path(source):
        folder = Path(source).expanduser()
        looked_for = f"a folder at {folder.resolve() if folder.exists() else folder}"
        if required:
            looked_for += f" with {', '.join(required)}"
        if folder.is_file():
            raise fail("it is a single file, not a model folder", looked_for)
        if not folder.is_dir():
            raise fail("no such folder", looked_for)
        missing = [r for r in required if not (folder / r.rstrip("/")).exists()]
        if missing:
            raise fail(f"the folder has no {', '.join(missing)}", looked_for)
        try:
            return _quiet(loader, str(folder.resolve()), local_files_only=True)
        except load_errors() as err:
            raise fail(first_line(err), looked_for) from None
    looked_for = f"the Hugging Face model {source} (cache: {cache_location()})"
    try:
        return _quiet(loader, source, local_files_only=True)
    except load_errors() as err:
        if local_only or offline():
            reason = why_hub_failed(err)
            if local_only and not offline():
                reason = "it is not in the local Hugging Face cache"
            raise fail(reason, looked_for) from None
    try:
        return _quiet(loader, source, local_files_only=False)
    except load_errors() as err:
        raise fail(why_hub_failed(err), looked_for) from None


def _quiet(loader: Callable[..., Any], source: str, **kw) -> Any:
    """Load without the hub libraries' progress bars and a deprecation warning that is only noise."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
            return loader(source, **kw)
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def in_local_cache(repo_id: str, filename: str) -> bool:
    """Whether `filename` of a Hub repo is in the local cache (no network request)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
    except (ImportError, ValueError, OSError):
        return False
    return isinstance(found, str)


def downloadable(repo_id: str, filename: str) -> bool:
    """Whether the Hub can be asked for `filename` of `repo_id` right now (False when offline).
    One HEAD request with a short timeout: a machine without network answers in seconds."""
    if offline():
        return False
    try:
        from huggingface_hub import constants, file_exists

        previous, constants.HF_HUB_ETAG_TIMEOUT = constants.HF_HUB_ETAG_TIMEOUT, 5
        try:
            return bool(file_exists(repo_id, filename))
        finally:
            constants.HF_HUB_ETAG_TIMEOUT = previous
    except Exception:  # no network, a proxy error, a gated or missing repo: not downloadable now
        return False
