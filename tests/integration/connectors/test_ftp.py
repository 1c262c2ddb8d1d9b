"""The FTP connector against a real pyftpdlib server on loopback, started by the tests."""

from __future__ import annotations

import ftplib
import hashlib
import json
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from huiju_connectors.ftp import FtpSource
from huiju_connectors.remote_files import (
    Completeness,
    MarkerMismatch,
    RemoteFile,
    TooLarge,
    TransferFailed,
    UnsafeName,
)
from huiju_connectors.retry import RetryPolicy
from huiju_demo.ftp_server import serve_ftp
from pyftpdlib.handlers import FTPHandler

USER, PASSWORD = "dept", "s3cret-pw"
MARKER = Completeness(mode="marker", grace=timedelta(hours=1))
RENAME = Completeness(mode="rename", grace=timedelta(hours=1))


@dataclass
class Server:
    host: str
    port: int
    root: Path
    handler: type[FTPHandler]

    def source(self, **kwargs: object) -> FtpSource:
        # The test server speaks plain FTP unless a test says otherwise (tls=True with its CA).
        options: dict = {"user": USER, "password": PASSWORD, "timeout": 5.0, "retry": RetryPolicy(base_delay=0.05),
                         "tls": False}
        options.update(kwargs)
        return FtpSource(self.host, self.port, **options)


def _start(root: Path, handler: type[FTPHandler] | None = None) -> Iterator[Server]:
    with serve_ftp(root, user=USER, password=PASSWORD, handler=handler) as server:
        yield Server(server.host, server.port, root, server.handler)


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "drop"
    root.mkdir()
    yield from _start(root)  # a fresh fault-injecting handler per test


@pytest.fixture
def gbk_server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "gbkdrop"
    root.mkdir()
    handler = type("GbkHandler", (FTPHandler,), {"encoding": "gbk"})
    yield from _start(root, handler)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


def put(root: Path, name: str, data: bytes, *, age: timedelta = timedelta(0)) -> None:
    """Create a file on the server side, optionally back-dated."""
    path = root / name
    path.write_bytes(data)
    if age:
        stamp = time.time() - age.total_seconds()
        os.utime(path, (stamp, stamp))


def marker_for(data: bytes, *, size: int | None = None, sha: str | None = None) -> bytes:
    size = len(data) if size is None else size
    sha = hashlib.sha256(data).hexdigest() if sha is None else sha
    return f"size={size}\nsha256={sha}\n".encode()


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir())


def test_marked_file_is_downloaded_verified_and_moved(ftp_server: Server, dest: Path) -> None:
    data = "统一社会信用代码,名称\n91350100M000100Y,示例公司\n".encode() * 1000
    put(ftp_server.root, "license.csv", data)
    put(ftp_server.root, "license.csv.done", marker_for(data))
    with ftp_server.source() as src:
        result = src.poll("*.csv", completeness=MARKER)
        assert [c.name for c in result.candidates] == ["license.csv"]
        assert result.candidates[0].marker == "license.csv.done"
        fetched = src.download(result.candidates[0], dest)
        assert fetched.size == len(data)
        assert fetched.sha256 == hashlib.sha256(data).hexdigest()
        assert fetched.local_path == dest.resolve() / "license.csv"
        assert fetched.local_path.read_bytes() == data
        assert leftovers(dest) == ["license.csv"]

        src.move_to(result.candidates[0], "processed")
        assert (ftp_server.root / "processed" / "license.csv").read_bytes() == data
        assert (ftp_server.root / "processed" / "license.csv.done").exists()
        assert src.poll("*.csv", completeness=MARKER).candidates == []


def test_json_marker_and_ok_suffix(ftp_server: Server, dest: Path) -> None:
    data = b'{"rows": []}'
    put(ftp_server.root, "a.json", data)
    marker = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    put(ftp_server.root, "a.json.ok", json.dumps(marker).encode())
    with ftp_server.source() as src:
        (candidate,) = src.poll("*.json", completeness=MARKER).candidates
        assert src.download(candidate, dest).size == len(data)


def test_marker_written_before_data_finished_is_a_mismatch(ftp_server: Server, dest: Path) -> None:
    full = b"x" * 10_000
    put(ftp_server.root, "late.csv", full[:4_000])  # upload still running
    put(ftp_server.root, "late.csv.done", marker_for(full))
    with ftp_server.source() as src:
        (candidate,) = src.poll("*.csv", completeness=MARKER).candidates
        with pytest.raises(MarkerMismatch, match=r"late\.csv.*4000.*10000"):
            src.download(candidate, dest)
    assert leftovers(dest) == []


def test_marker_with_wrong_hash_is_a_mismatch(ftp_server: Server, dest: Path) -> None:
    data = b"a,b\n1,2\n"
    put(ftp_server.root, "bad.csv", data)
    put(ftp_server.root, "bad.csv.done", marker_for(data, sha="0" * 64))
    with ftp_server.source() as src:
        (candidate,) = src.poll("*.csv", completeness=MARKER).candidates
        with pytest.raises(MarkerMismatch, match=r"bad\.csv") as excinfo:
            src.download(candidate, dest)
    assert "sha256" in excinfo.value.reason
    assert leftovers(dest) == []


def test_empty_file_with_matching_marker_is_allowed(ftp_server: Server, dest: Path) -> None:
    put(ftp_server.root, "empty.csv", b"")
    put(ftp_server.root, "empty.csv.done", marker_for(b""))
    with ftp_server.source() as src:
        (candidate,) = src.poll("*.csv", completeness=MARKER).candidates
        fetched = src.download(candidate, dest)
    assert fetched.size == 0
    assert fetched.sha256 == hashlib.sha256(b"").hexdigest()
    assert fetched.local_path.read_bytes() == b""


def test_file_without_marker_waits_then_is_reported_stale(ftp_server: Server) -> None:
    put(ftp_server.root, "fresh.csv", b"1\n")
    put(ftp_server.root, "old.csv", b"1\n", age=timedelta(hours=3))
    with ftp_server.source() as src:
        result = src.poll("*.csv", completeness=MARKER)
    assert result.candidates == []
    assert [(i.name, i.reason) for i in result.waiting] == [("fresh.csv", "awaiting_marker")]
    assert [(i.name, i.reason) for i in result.stale_incomplete] == [("old.csv", "stale_incomplete")]


def test_rename_rule_takes_only_final_names(ftp_server: Server, dest: Path) -> None:
    put(ftp_server.root, "tax.csv.part", b"partial")
    put(ftp_server.root, ".~penalty.csv", b"partial")
    put(ftp_server.root, "done.csv", b"complete\n")
    with ftp_server.source() as src:
        result = src.poll("*.csv", completeness=RENAME)
        assert [c.name for c in result.candidates] == ["done.csv"]
        assert {i.name for i in result.waiting} == {"tax.csv.part", ".~penalty.csv"}
        # The department finishes the upload by renaming; the next poll takes it.
        os.rename(ftp_server.root / "tax.csv.part", ftp_server.root / "tax.csv")
        result = src.poll("*.csv", completeness=RENAME)
        assert sorted(c.name for c in result.candidates) == ["done.csv", "tax.csv"]
        fetched = src.download(next(c for c in result.candidates if c.name == "tax.csv"), dest)
    assert fetched.local_path.read_bytes() == b"partial"


@pytest.mark.parametrize("mode", ["drop", "stall"])
def test_interrupted_transfer_is_resumed_and_never_promoted_partially(
    ftp_server: Server, dest: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    put(ftp_server.root, "big.bin", data)
    put(ftp_server.root, "big.bin.done", marker_for(data))
    dtp = ftp_server.handler.dtp_handler
    dtp.target, dtp.cut_after, dtp.failures, dtp.mode = "big.bin", 1_000_000, 2, mode
    caplog.set_level(logging.INFO, logger="huiju_connectors")
    # A short socket timeout makes the stalled attempt fail fast.
    with ftp_server.source(timeout=1.0 if mode == "stall" else 5.0) as src:
        (candidate,) = src.poll("*.bin", completeness=MARKER).candidates
        fetched = src.download(candidate, dest)
    assert fetched.local_path.read_bytes() == data
    assert leftovers(dest) == ["big.bin"]
    assert dtp.failures == 0
    assert "resumed big.bin at byte" in caplog.text


def test_transfer_that_keeps_failing_leaves_nothing(ftp_server: Server, dest: Path) -> None:
    data = os.urandom(600_000)
    put(ftp_server.root, "flaky.bin", data)
    put(ftp_server.root, "flaky.bin.done", b"")
    dtp = ftp_server.handler.dtp_handler
    dtp.target, dtp.cut_after, dtp.failures, dtp.mode = "flaky.bin", 100_000, 100, "drop"
    with ftp_server.source(retry=RetryPolicy(attempts=2, base_delay=0.05)) as src:
        (candidate,) = src.poll("*.bin", completeness=MARKER).candidates
        with pytest.raises(TransferFailed, match=r"flaky\.bin"):
            src.download(candidate, dest)
    assert leftovers(dest) == []


def test_hostile_names_never_leave_dest(ftp_server: Server, dest: Path) -> None:
    put(ftp_server.root, "a\\b.csv", b"backslash")
    put(ftp_server.root, "a\\b.csv.done", b"")
    put(ftp_server.root, "ok.csv", b"fine")
    put(ftp_server.root, "ok.csv.done", b"")
    with ftp_server.source() as src:
        result = src.poll("*.csv", completeness=MARKER)
        assert [c.name for c in result.candidates] == ["ok.csv"]
        assert [(i.name, i.reason) for i in result.rejected] == [
            ("a\\b.csv", "unsafe_name"),
            ("a\\b.csv.done", "unsafe_name"),
        ]
        # Names a hostile server could list (they cannot exist on this server's disk).
        epoch = datetime.now(UTC)
        for name in ["../x.csv", "/etc/passwd", "a\\b.csv", "..", "sub/../../x"]:
            with pytest.raises(UnsafeName):
                src.download(RemoteFile(name, 1, epoch), dest)
    assert leftovers(dest) == []
    assert not (dest.parent / "x.csv").exists()


def test_gbk_server_names(gbk_server: Server, dest: Path) -> None:
    name = "市场监管局_行政许可_20240501.csv"
    data = "名称\n示例\n".encode("gb18030")
    (gbk_server.root / name).write_bytes(data)
    (gbk_server.root / f"{name}.done").write_bytes(marker_for(data))
    with gbk_server.source(encoding="gbk") as src:
        (candidate,) = src.poll("*.csv", completeness=MARKER).candidates
        assert candidate.name == name
        fetched = src.download(candidate, dest)
        assert fetched.local_path.name == name
        src.move_to(candidate, "已处理")
    assert (gbk_server.root / "已处理" / name).read_bytes() == data


def test_gbk_names_read_as_utf8_are_reported_not_mangled(gbk_server: Server) -> None:
    (gbk_server.root / "人口.csv").write_bytes(b"1\n")
    (gbk_server.root / "plain.csv").write_bytes(b"1\n")
    with gbk_server.source(encoding="utf-8") as src:
        result = src.poll("*.csv", completeness=RENAME)
    assert [c.name for c in result.candidates] == ["plain.csv"]
    (bad,) = result.rejected
    assert bad.reason == "undecodable_name"
    assert "utf-8" in bad.detail and "gbk" in bad.detail


def test_thousands_of_files_in_bounded_stable_batches(ftp_server: Server) -> None:
    base = time.time() - 600
    for i in range(1500):
        path = ftp_server.root / f"r{i:05d}.csv"
        path.write_bytes(b"x")
        stamp = base + i // 10  # ten files share each mtime: name breaks the tie
        os.utime(path, (stamp, stamp))
    seen: list[str] = []
    skip: Callable[[RemoteFile], bool] = lambda f: f.name in taken  # noqa: E731
    taken: set[str] = set()
    with ftp_server.source() as src:
        while True:
            result = src.poll("*.csv", completeness=RENAME, batch_size=400, skip=skip)
            assert len(result.candidates) <= 400
            if not result.candidates:
                break
            names = [c.name for c in result.candidates]
            seen.extend(names)
            taken.update(names)
    assert seen == [f"r{i:05d}.csv" for i in range(1500)]


def test_wrong_password_is_not_retried_forever(ftp_server: Server) -> None:
    src = ftp_server.source(password="wrong", retry=RetryPolicy(attempts=2, base_delay=0.05))
    with pytest.raises((ftplib.error_perm, TransferFailed)):
        src.poll(completeness=MARKER)
    src.close()


# ------------------------------------------------------------------------------------------ FTPS


def _make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 (cryptography ships with asyncssh)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    start = datetime.now(UTC) - timedelta(days=1)
    end = start + timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(name("Huiju test CA")).issuer_name(name("Huiju test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_file, cert_file, key_file


@pytest.fixture
def ftps_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    from pyftpdlib.handlers import TLS_FTPHandler

    ca_file, cert_file, key_file = _make_ca_and_server_cert(tmp_path)
    root = tmp_path / "tlsdrop"
    root.mkdir()
    handler = type(
        "TlsHandler",
        (TLS_FTPHandler,),
        {
            "certfile": str(cert_file),
            "keyfile": str(key_file),
            "tls_control_required": True,
            "tls_data_required": True,
        },
    )
    for server in _start(root, handler):
        yield server, ca_file


def test_ftps_with_verified_certificate(ftps_server: tuple[Server, Path], dest: Path) -> None:
    server, ca_file = ftps_server
    data = os.urandom(700_000)
    put(server.root, "secure.bin", data)
    put(server.root, "secure.bin.done", marker_for(data))
    with server.source(tls=True, ca_file=ca_file) as src:
        (candidate,) = src.poll("*.bin", completeness=MARKER).candidates
        assert src.download(candidate, dest).local_path.read_bytes() == data


def test_ftps_refuses_an_untrusted_certificate(ftps_server: tuple[Server, Path], tmp_path: Path) -> None:
    server, _ = ftps_server
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other_ca, _, _ = _make_ca_and_server_cert(other_dir)
    src = server.source(tls=True, ca_file=other_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        src.poll(completeness=MARKER)
    src.close()


def test_a_file_over_max_bytes_is_not_downloaded(ftp_server: Server, dest: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"x" * 100_000
    put(ftp_server.root, "big.csv", data)
    put(ftp_server.root, "big.csv.done", marker_for(data))
    with ftp_server.source(max_bytes=50_000) as src:
        [candidate] = src.poll("*.csv", completeness=MARKER).candidates
        with pytest.raises(TooLarge, match=r"big.csv: 100000 bytes, more than max_download_mb allows \(50000"):
            src.download(candidate, dest)
        # A server that announces no size (no SIZE, a listing without one) is cut off while streaming.
        monkeypatch.setattr(FtpSource, "_remote_size", lambda self, ftp, remote: None)
        with pytest.raises(TooLarge, match="more than max_download_mb"):
            src.download(RemoteFile(candidate.name, None, candidate.mtime, candidate.marker), dest)
        assert leftovers(dest) == []
        # The connection is usable afterwards (the abandoned transfer was dropped).
        assert [c.name for c in src.poll("*.csv", completeness=MARKER).candidates] == ["big.csv"]
