"""Passwords: argon2id hashes (argon2-cffi) and the rules a new password must meet."""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults are RFC 9106's second recommended option (argon2id, 64 MiB, t=3, p=4).
_HASHER = PasswordHasher()
MIN_LENGTH = 10
# Verified when the account name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string) of ``password``."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; without a hash, the same work and False."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's (then it is replaced at the next login)."""
    return _HASHER.check_needs_rehash(stored_hash)


def password_problem(password: str, username: str) -> str | None:
    """Why ``password`` is not acceptable for ``username`` (in Chinese), or None."""
    if len(password) < MIN_LENGTH:
        return f"密码至少{MIN_LENGTH}位"
    classes = sum(any(c in group for c in password)
                  for group in (string.ascii_lowercase, string.ascii_uppercase, string.digits))
    others = any(not c.isalnum() for c in password)
    if classes + others < 3:
        return "密码须包含大写字母、小写字母、数字、符号中的至少三类"
    if username and username.lower() in password.lower():
        return "密码不能包含用户名"
    return None


def generate_password() -> str:
    """A random password that meets the rules (temporary passwords, demo accounts)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(14)) + secrets.choice("#%+-=@")
        if password_problem(candidate, "") is None:
            return candidate
