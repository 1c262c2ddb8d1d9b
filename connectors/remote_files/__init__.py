"""What the file-drop connectors (FTP, FTPS, SFTP) share: the file model, completeness, safe names.

Departments drop files on servers they control, so everything a listing says is untrusted:
names may try to escape the landing directory, sizes may change, a file may still be uploading.
This package holds the protocol-independent rules so FTP and SFTP behave identically (by concern:
:mod:`.model`, :mod:`.names`, :mod:`.markers`, :mod:`.completeness`, :mod:`.download`, and
:mod:`.source`, the base class every drop connector extends):

* :func:`evaluate` decides which listed files are complete (``marker`` or ``rename`` rule),
  which are still arriving, and which are stale (waiting longer than the grace period);
* :func:`parse_marker` / :func:`verify_against_marker` read and enforce ``size=`` / ``sha256=``
  lines (or a JSON object) in a ``.done`` / ``.ok`` marker;
* :func:`safe_local_name` and :func:`local_target` make sure nothing is ever written outside
  the destination directory;
* :func:`promote` moves a verified temporary download into place atomically.
"""

from __future__ import annotations

from . import model
from .completeness import evaluate
from .download import finish_download, promote, resume_hasher
from .markers import parse_marker, verify_against_marker
from .model import *  # noqa: F403 -- the vocabulary, as model.__all__ lists it
from .names import check_remote_name, decode_name, listed_name, local_target, safe_local_name, temp_download_path
from .source import DROP_RETRY, DropSource

__all__ = [
    *model.__all__,
    "DROP_RETRY",
    "DropSource",
    "check_remote_name",
    "decode_name",
    "evaluate",
    "finish_download",
    "listed_name",
    "local_target",
    "parse_marker",
    "promote",
    "resume_hasher",
    "safe_local_name",
    "temp_download_path",
    "verify_against_marker",
]
