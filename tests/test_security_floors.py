"""Security-sensitive dependencies: each pinned in requirements.txt, never below its floor (security-floors.txt).

The floors are kept by hand from the advisories (no vulnerability database is reachable here); this
test is what makes a lock that slips below one fail, and a floor without its advisory too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
#: The packages the issue names as security-sensitive: every one must have a floor.
SENSITIVE = {"apache-airflow", "paramiko", "asyncssh", "zeep", "lxml", "cryptography", "jinja2", "urllib3", "httpx",
             "openpyxl"}
_FLOOR = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)\s+(?P<floor>\S+)\s+#\s*(?P<advisory>\S.*)$")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(?P<version>[^\s;#]+)")


def read_floors(path: Path = ROOT / "security-floors.txt") -> dict[str, tuple[Version, str]]:
    """``{package: (floor, advisory)}`` from the floors file; a malformed line is an error."""
    floors = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _FLOOR.match(line)
        if match is None:
            raise ValueError(f"{path.name}:{number}: expected `package floor # advisory`, got {line!r}")
        floors[canonicalize_name(match["name"])] = (Version(match["floor"]), match["advisory"])
    return floors


def read_pins(path: Path = ROOT / "requirements.txt") -> dict[str, Version]:
    """``{package: pinned version}`` of a compiled requirements file."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonicalize_name(match["name"])] = Version(match["version"])
    return pins


FLOORS = read_floors()
PINS = read_pins()


def test_every_sensitive_package_has_a_floor_with_its_advisory() -> None:
    assert set(FLOORS) >= SENSITIVE, f"no floor for {sorted(SENSITIVE - set(FLOORS))} in security-floors.txt"
    for name, (_, advisory) in FLOORS.items():
        assert re.search(r"CVE-\d{4}-\d+|GHSA-|no advisory known", advisory), f"{name}: say which advisory: {advisory}"


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_the_pin_is_not_below_the_floor(name: str) -> None:
    floor, advisory = FLOORS[name]
    assert name in PINS, f"{name} has a security floor but is not pinned in requirements.txt"
    assert PINS[name] >= floor, (f"{name}=={PINS[name]} in requirements.txt is below its security floor {floor} "
                                 f"({advisory}): bump it in requirements.in and `make lock`")


def test_the_sensitive_packages_are_pinned_by_hand_in_requirements_in() -> None:
    """Pinned in requirements.in too, so `make lock` never moves one silently."""
    pinned_by_hand = read_pins(ROOT / "requirements.in")
    assert set(pinned_by_hand) >= SENSITIVE, f"pin {sorted(SENSITIVE - set(pinned_by_hand))} in requirements.in"
    assert {name: PINS[name] for name in SENSITIVE} == {name: pinned_by_hand[name] for name in SENSITIVE}


def test_a_pin_below_its_floor_is_caught(tmp_path: Path) -> None:
    """The check itself: a lock file with an old urllib3 is below its floor."""
    old = tmp_path / "requirements.txt"
    old.write_text("urllib3==2.5.0    # via requests\nhttpx==0.28.1\n", encoding="utf-8")
    pins = read_pins(old)
    assert pins["urllib3"] < FLOORS["urllib3"][0] and pins["httpx"] >= FLOORS["httpx"][0]
    with pytest.raises(ValueError, match="expected"):
        bad = tmp_path / "floors.txt"
        bad.write_text("lxml 4.9.1\n", encoding="utf-8")  # a floor without its advisory
        read_floors(bad)
