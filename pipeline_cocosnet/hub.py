"""Where weights come from (a local folder or a Hub repo id), and one-line errors when they cannot be had.

``CoCosNetPipeline.from_pretrained`` and ``push_to_hub`` go through here, so the pipeline,
the CLI (``cocosnet translate|push``, exit status 2) and the app all say the same thing:

* a local path that does not exist: ``no such folder: …``;
* a Hub id that cannot be fetched (offline, or not in the cache): which id, and how to fill
  the cache (``hf download ID`` while online; ``HF_HUB_OFFLINE=1`` then skips the network);
* a Hub upload without network: which repo, and that the Hub cannot be reached.

:func:`upload_pipeline_folder` is the one upload used by ``push_to_hub``,
``save_pretrained(push_to_hub=True)``, ``cocosnet push`` and ``cocosnet fetch-release --push``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "HubError", "HUB_ID", "RELEASE_PREFIX", "looks_local", "is_checkpoint_folder", "check_local_weights", "hub_errors",
    "upload_pipeline_folder",
]  # fmt: skip

#: release.py's cache stamp in a converted folder: what it was converted from (local bookkeeping)
CACHE_STAMP = ".cocosnet-source.json"
#: ``release:NAME`` weights: the published release, fetched and converted on first use (pipeline_cocosnet/weights.py)
RELEASE_PREFIX = "release:"
#: files of a pipeline folder that are ours, not the model's: never uploaded
LOCAL_ONLY_FILES = [CACHE_STAMP]

#: what a Hub repo id looks like (``owner/name``)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

#: words in ``from_pretrained``'s OSError when the Hub could not be reached and the cache lacks the files
_OFFLINE_HINTS = ("not fully cached", "couldn't connect", "outgoing traffic has been disabled", "offline", "cached snapshot")


class HubError(OSError):
    """The Hugging Face Hub could not be used for a repo; the message is one line naming the repo and what to do."""


def looks_local(name: str) -> bool:
    """Whether ``name`` can only be a local path (not a Hub ``owner/name`` id)."""
    if name.startswith((".", "/", "~")) or "\\" in name or not HUB_ID.match(name):
        return True
    return Path(name.split("/", 1)[0]).expanduser().is_dir()  # ``weights/x`` inside an existing ``weights/`` folder


def is_checkpoint_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a research-code checkpoint folder (``*_net_Corr.pth`` files, no ``model_index.json``)."""
    path = Path(path)
    return path.is_dir() and not (path / "model_index.json").is_file() and any(path.rglob("*_net_Corr.pth"))


def check_local_weights(name: str | os.PathLike) -> None:
    """Raise ``FileNotFoundError("no such folder: …")`` for a missing local weights path (Hub ids pass).

    ``release:NAME`` and the research code's checkpoint folders are not pipeline folders: the
    error says to load them through ``pipeline_cocosnet.load_pipeline``, which converts them once.
    """
    text = str(name)
    path = Path(text).expanduser()
    if text.startswith(RELEASE_PREFIX) or is_checkpoint_folder(path):
        what = "a published release" if text.startswith(RELEASE_PREFIX) else "the research code's checkpoint folder"
        raise FileNotFoundError(
            f"{text} is {what}, not a pipeline folder: load it with pipeline_cocosnet.load_pipeline({text!r}) "
            "(downloaded and converted once, then cached) or `cocosnet translate --model …`"
        )
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"not a pipeline folder (a file): {path}")
        return
    if looks_local(text):
        raise FileNotFoundError(f"no such folder: {text}")


def _is_transport_error(error: BaseException) -> bool:
    """A network failure from the HTTP clients the Hub library uses (httpx, httpx2, requests, urllib3)."""
    for cls in type(error).__mro__:
        module = cls.__module__.split(".", 1)[0]
        if module in ("httpx", "httpx2", "requests", "urllib3") and cls.__name__ in ("TransportError", "ConnectionError", "RequestError", "HTTPError"):
            return True
    return False


@contextlib.contextmanager
def hub_errors(repo_id: str, action: str = "load") -> Iterator[None]:
    """Turn Hub failures inside the block into a one-line :class:`HubError` naming ``repo_id``.

    ``action`` is ``"load"`` (``from_pretrained``: offline or uncached → how to fill the cache)
    or ``"push"`` (uploads: the Hub cannot be reached or refused).
    """
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    # a Hub id that is not a local folder could have been meant as either: say both
    folder = f"no such folder: {repo_id}; as a Hugging Face Hub id it cannot be loaded either: " if action == "load" else ""
    try:
        yield
    except HubError:
        raise
    except RepositoryNotFoundError:
        raise HubError(f"{folder}no such model repo on the Hugging Face Hub: {repo_id}") from None
    except Exception as error:  # noqa: BLE001 - narrowed below; everything else propagates unchanged
        message = " ".join(str(error).split())
        first = message.split(". ")[0][:200]
        if action == "push" and (_is_transport_error(error) or isinstance(error, HfHubHTTPError)):
            reason = "cannot reach the Hugging Face Hub" if _is_transport_error(error) else "the Hub refused it"
            raise HubError(f"cannot push to {repo_id}: {reason} ({first}); check the network, HF_ENDPOINT and your token (`hf auth login`)") from None
        if action == "load" and (_is_transport_error(error) or (isinstance(error, OSError) and any(h in message.lower() for h in _OFFLINE_HINTS))):
            raise HubError(
                f"{folder}the Hub cannot be reached and {repo_id} is not in the local cache (fill the cache while online "
                f"with `hf download {repo_id}`; HF_HUB_OFFLINE=1 then loads it without the network)"
            ) from None
        if action == "load" and isinstance(error, OSError) and "valid model identifier" in message:
            raise HubError(f"{folder}no such model repo on the Hugging Face Hub: {repo_id}") from None
        raise


def upload_pipeline_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    commit_message: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    create_pr: bool = False,
) -> str:
    """Create the Hub model repo if needed and upload ``folder`` as it is; returns the repo id.

    Everything in the folder goes (every weight variant, ``model_index.json``, the model card),
    except :data:`LOCAL_ONLY_FILES`. Failures raise :class:`HubError` in one line naming the repo.
    """
    from huggingface_hub import create_repo, upload_folder

    with hub_errors(repo_id, "push"):
        repo_id = create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
        upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            ignore_patterns=LOCAL_ONLY_FILES,
            commit_message=commit_message or "Upload CoCosNet v2 pipeline",
            token=token,
            create_pr=create_pr,
        )
    return repo_id
