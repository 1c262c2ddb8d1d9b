"""The warehouse roles' passwords: nothing in the repository, nothing in clear on the server.

Every role has a random secret of its own (:func:`password`), generated once into
``var/secrets/warehouse_passwords.json`` (0600 in a 0700 folder, through huiju.private_files) — the
embedded server's admin, the owner role that runs the migrations, each component's login role. None
is derived from another, so a process that knows one role's password knows nothing of the others'.
Any of them may instead come from the environment (``HUIJU_DB_PASSWORD_<ROLE>``, e.g.
``HUIJU_DB_PASSWORD_HUIJU_LANDING_LOGIN``, or a file named by ``HUIJU_DB_PASSWORD_<ROLE>_FILE``), kept in the
deployment's secret store: that is how an external server's roles are configured (every process that
connects as a role is given its secret).

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

from huiju.private_files import private_dir, write_private
from huiju.settings import get_settings, secret_setting

#: The file under ``var/secrets`` holding every generated password, by role name.
PASSWORDS_FILE = "warehouse_passwords.json"
_SCRAM_ITERATIONS = 4096


def secrets_dir() -> Path:
    """``var/secrets``, created ``0700`` (its files are ``0600``)."""
    return private_dir(get_settings().var / "secrets")


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


def environment_name(role: str) -> str:
    """The environment variable that may hold ``role``'s password (``HUIJU_DB_PASSWORD_<ROLE>``)."""
    return "HUIJU_DB_PASSWORD_" + role.upper()


def password(role: str) -> str:
    """The password of warehouse role ``role``: from the environment (or the file its ``…_FILE`` names), else
    random, generated once into var/secrets."""
    configured = secret_setting(environment_name(role))
    if configured:
        return configured
    with lock("passwords") as folder:
        path = folder / PASSWORDS_FILE
        known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        if role not in known:
            known[role] = secrets.token_urlsafe(24)
            write_private(path, json.dumps(known))
        return known[role]


def password_stamp(secret: str) -> str:
    """A one-way mark of ``secret`` (kept as the role's comment): tells whether the role already has it.

    The owner role that sets the login roles' passwords cannot read ``pg_authid``; it compares this
    mark instead, so processes starting together do not rewrite (and race on) the same role.
    """
    return "huiju password " + hmac.new(secret.encode("utf-8"), b"huiju warehouse password stamp",
                                        hashlib.sha256).hexdigest()[:32]


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
