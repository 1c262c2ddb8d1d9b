"""The warehouse roles' passwords: nothing in the repository, nothing in clear on the server.

The embedded server's admin password is generated once at bootstrap into ``var/secrets`` (0600 files
in a 0700 folder); each component's login password is derived from the admin's
(:func:`login_password`). Any of them may instead come from the environment
(``HUIJU_DB_PASSWORD_<ROLE>``, e.g. ``HUIJU_DB_PASSWORD_HUIJU_LANDING_LOGIN``), kept in the
deployment's secret store; the bootstrap then sets each role's password to that value.

The server is only ever sent a SCRAM-SHA-256 verifier (:func:`scram_verifier`), never a password in clear,
so no statement log can hold one.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from huiju.settings import get_settings

#: The file under ``var/secrets`` holding every generated password, by role name.
PASSWORDS_FILE = "warehouse_passwords.json"
_SCRAM_ITERATIONS = 4096


def secrets_dir() -> Path:
    """``var/secrets``, created ``0700`` (its files are ``0600``)."""
    path = get_settings().var / "secrets"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


@contextmanager
def lock(name: str) -> Iterator[Path]:
    """An exclusive lock (``var/secrets/.<name>.lock``) between the processes of this checkout; yields the folder."""
    folder = secrets_dir()
    descriptor = os.open(folder / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield folder
    finally:
        os.close(descriptor)


def _environment_name(role: str) -> str:
    return "HUIJU_DB_PASSWORD_" + role.upper()


def password(role: str) -> str:
    """The password of warehouse role ``role``: from the environment, else generated once into var/secrets."""
    configured = os.environ.get(_environment_name(role))
    if configured:
        return configured
    with lock("passwords") as folder:
        path = folder / PASSWORDS_FILE
        known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        if role not in known:
            known[role] = secrets.token_urlsafe(24)
            scratch = path.with_suffix(".tmp")
            descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(known, handle)
            os.replace(scratch, path)
        return known[role]


def login_password(role: str, admin_password: str) -> str:
    """The password of a component's login ``role``: configured (environment), or derived from the admin's.

    Derived (HMAC-SHA256 of the role's name under the admin password), so every process that may run
    the bootstrap — and only those — knows every role's password without a second secret to keep in
    step across checkouts, test folders and Airflow's workers; rotating the admin password rotates
    them all at the next bootstrap. Without an admin password (an external server reached by
    peer authentication or .pgpass) the role's password is generated once into var/secrets instead.
    """
    configured = os.environ.get(_environment_name(role))
    if configured:
        return configured
    if not admin_password:
        return password(role)
    digest = hmac.new(admin_password.encode("utf-8"), f"huiju warehouse role {role}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def scram_verifier(secret: str, salt: bytes | None = None, iterations: int = _SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``secret`` (RFC 5802/7677; what ``\\password`` sends)."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    encode = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{encode(salt).decode()}"
            f"${encode(stored_key).decode()}:{encode(server_key).decode()}")


def verifier_matches(verifier: str | None, secret: str) -> bool:
    """True when the stored SCRAM ``verifier`` is one of ``secret`` (same salt and iterations)."""
    if not verifier or not verifier.startswith("SCRAM-SHA-256$"):
        return False
    try:
        iterations, salt = verifier.split("$")[1].split(":")
        expected = scram_verifier(secret, base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected, verifier)
