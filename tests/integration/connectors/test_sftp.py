"""The SFTP connector against a real asyncssh server on loopback, started by the tests."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from huiju_connectors.remote_files import Completeness, MarkerMismatch, TooLarge, TransferFailed
from huiju_connectors.retry import RetryPolicy
from huiju_connectors.sftp import HostKeyMismatch, SftpSource, parse_pinned_keys
from huiju_demo.sftp_server import Faults, serve_sftp

USER, PASSWORD = "dept", "s3cret-pw"
MARKER = Completeness(mode="marker", grace=timedelta(hours=1))


@dataclass
class Server:
    host: str
    port: int
    root: Path
    host_key: asyncssh.SSHKey
    client_key: asyncssh.SSHKey
    faults: Faults

    @property
    def pin(self) -> str:
        return self.host_key.export_public_key().decode()

    def source(self, **kwargs: Any) -> SftpSource:
        options: dict[str, Any] = {
            "username": USER,
            "password": PASSWORD,
            "host_keys": self.pin,
            "timeout": 5.0,
            "retry": RetryPolicy(base_delay=0.05),
        }
        options.update(kwargs)
        return SftpSource(self.host, self.port, **options)


@pytest.fixture(scope="module")
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
def sftp_server(tmp_path: Path, client_key: asyncssh.SSHKey) -> Iterator[Server]:
    root = tmp_path / "drop"
    root.mkdir()
    with serve_sftp(root, user=USER, password=PASSWORD, authorized_keys=[client_key]) as server:
        yield Server(server.host, server.port, root, server.host_key, client_key, server.faults)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


def marker_for(data: bytes) -> bytes:
    return f"size={len(data)}\nsha256={hashlib.sha256(data).hexdigest()}\n".encode()


def test_download_verify_and_move_with_password(sftp_server: Server, dest: Path) -> None:
    data = "身份证号,姓名\n110101199003071234,张三\n".encode() * 5000
    (sftp_server.root / "people.csv").write_bytes(data)
    (sftp_server.root / "people.csv.done").write_bytes(marker_for(data))
    (sftp_server.root / "waiting.csv").write_bytes(b"x")
    (sftp_server.root / "sub").mkdir()
    with sftp_server.source() as src:
        result = src.poll("*.csv", completeness=MARKER)
        assert [c.name for c in result.candidates] == ["people.csv"]
        assert [i.name for i in result.waiting] == ["waiting.csv"]
        fetched = src.download(result.candidates[0], dest)
        assert fetched.local_path.read_bytes() == data
        assert fetched.sha256 == hashlib.sha256(data).hexdigest()
        assert sorted(p.name for p in dest.iterdir()) == ["people.csv"]
        assert src.move_to(result.candidates[0], "processed").endswith("processed/people.csv")
        assert src.poll("*.csv", completeness=MARKER).candidates == []
    assert (sftp_server.root / "processed" / "people.csv").read_bytes() == data
    assert (sftp_server.root / "processed" / "people.csv.done").exists()


@pytest.mark.filterwarnings("ignore:.*bcrypt.kdf")
def test_key_auth_and_marker_mismatch(sftp_server: Server, dest: Path) -> None:
    data = b"a,b\n1,2\n"
    (sftp_server.root / "x.csv").write_bytes(data)
    (sftp_server.root / "x.csv.ok").write_bytes(b"size=999\n")
    # Few KDF rounds keep the test fast (bcrypt warns about it; that is fine here).
    key_text = sftp_server.client_key.export_private_key(passphrase="pp", rounds=8).decode()
    with sftp_server.source(password=None, private_key=key_text, passphrase="pp") as src:
        (candidate,) = src.poll("*.csv", completeness=MARKER).candidates
        with pytest.raises(MarkerMismatch, match=r"x\.csv.*999"):
            src.download(candidate, dest)
    assert list(dest.iterdir()) == []


def test_unknown_host_key_is_refused(sftp_server: Server) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    src = sftp_server.source(host_keys=other)
    with pytest.raises(HostKeyMismatch) as excinfo:
        src.poll(completeness=MARKER)
    src.close()
    offered = sftp_server.host_key.get_fingerprint("sha256")
    assert excinfo.value.fingerprint == offered
    message = str(excinfo.value)
    assert "127.0.0.1" in message and str(sftp_server.port) in message and offered in message


def test_changed_host_key_of_another_type_is_refused(sftp_server: Server) -> None:
    # The department "changed" to a server that has no key of the pinned (ECDSA) type at all.
    pinned = asyncssh.generate_private_key("ecdsa-sha2-nistp256").export_public_key().decode()
    with sftp_server.source(host_keys=pinned) as src, pytest.raises(HostKeyMismatch, match=r"127\.0\.0\.1"):
        src.list_files()


def test_known_hosts_line_is_accepted_as_pin(sftp_server: Server) -> None:
    line = f"[127.0.0.1]:{sftp_server.port} {sftp_server.pin}"
    assert parse_pinned_keys(line)[0].get_fingerprint() == sftp_server.host_key.get_fingerprint()
    with sftp_server.source(host_keys=[line]) as src:
        assert src.list_files() == ([], [])


def test_pins_are_required() -> None:
    with pytest.raises(ValueError, match="pinned"):
        SftpSource("127.0.0.1", 22, username="u", password="p", host_keys=[])


@pytest.mark.parametrize("mode", ["drop", "stall"])
def test_interrupted_download_resumes(
    sftp_server: Server, dest: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    (sftp_server.root / "big.bin").write_bytes(data)
    (sftp_server.root / "big.bin.done").write_bytes(marker_for(data))
    faults = sftp_server.faults
    faults.target, faults.cut_after, faults.failures, faults.mode = b"big.bin", 1_500_000, 1, mode
    caplog.set_level(logging.INFO, logger="huiju_connectors")
    # Small chunks so part of the file is on disk before the fault; short timeout for the stall.
    with sftp_server.source(chunk_size=512 * 1024, timeout=1.0) as src:
        (candidate,) = src.poll("*.bin", completeness=MARKER).candidates
        fetched = src.download(candidate, dest)
    assert fetched.local_path.read_bytes() == data
    assert sorted(p.name for p in dest.iterdir()) == ["big.bin"]
    assert faults.failures == 0
    assert "resumed big.bin at byte" in caplog.text


def test_download_that_keeps_failing_leaves_nothing(sftp_server: Server, dest: Path) -> None:
    (sftp_server.root / "flaky.bin").write_bytes(os.urandom(800_000))
    (sftp_server.root / "flaky.bin.done").write_bytes(b"")
    faults = sftp_server.faults
    faults.target, faults.cut_after, faults.failures, faults.mode = b"flaky.bin", 100_000, 100, "drop"
    with sftp_server.source(retry=RetryPolicy(attempts=2, base_delay=0.05), chunk_size=256 * 1024) as src:
        (candidate,) = src.poll("*.bin", completeness=MARKER).candidates
        with pytest.raises(TransferFailed, match=r"flaky\.bin"):
            src.download(candidate, dest)
    assert list(dest.iterdir()) == []


def test_undecodable_and_gbk_names(sftp_server: Server, dest: Path) -> None:
    gbk_name = "法人信用.csv".encode("gbk")
    (sftp_server.root / os.fsdecode(gbk_name)).write_bytes(b"1\n")
    (sftp_server.root / "ok.csv").write_bytes(b"1\n")
    rename = Completeness(mode="rename")
    with sftp_server.source() as src:
        result = src.poll("*.csv", completeness=rename)
        assert [c.name for c in result.candidates] == ["ok.csv"]
        assert [i.reason for i in result.rejected] == ["undecodable_name"]
    with sftp_server.source(encoding="gbk") as src:
        names = sorted(c.name for c in src.poll("*.csv", completeness=rename).candidates)
        assert names == ["ok.csv", "法人信用.csv"]
        (gbk,) = [c for c in src.poll("*.csv", completeness=rename).candidates if c.name != "ok.csv"]
        assert src.download(gbk, dest).local_path.name == "法人信用.csv"


def test_a_file_over_max_bytes_is_not_downloaded(sftp_server: Server, dest: Path) -> None:
    data = b"y" * 100_000
    (sftp_server.root / "big.csv").write_bytes(data)
    (sftp_server.root / "big.csv.done").write_bytes(marker_for(data))
    with sftp_server.source(max_bytes=50_000) as src:
        [candidate] = src.poll("*.csv", completeness=MARKER).candidates
        with pytest.raises(TooLarge, match=r"big\.csv: 100000 bytes"):
            src.download(candidate, dest)
    assert list(dest.iterdir()) == []
