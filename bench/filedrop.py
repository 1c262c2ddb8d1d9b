"""File-drop benchmarks: `sftp_200mb` and `ftp_200mb`, each against an anchor in the same run.

``sftp_200mb``: the platform's SFTP download (asyncssh, pinned host key, temporary name,
sha256 verification, atomic promote) of a 200 MB file from an OpenSSH ``sshd`` that the
benchmark starts on a loopback port, against OpenSSH's own ``sftp -b`` fetching the same file
from the same server. The server is OpenSSH, not our test server, so that it is not the
bottleneck. ``ftp_200mb``: the platform's FTP download of the same file from pyftpdlib against
``cp`` of the file on local disk.

The downloads run in a child process (:func:`bench.harness.run_isolated`), so the peak memory
is the client's own and the server does not share its interpreter.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Entry, run_isolated

SIZE = 200 * 1024 * 1024
_MB = 1024 * 1024


def _payload(work: Path) -> Path:
    """200 MB of random bytes (incompressible, so no layer can cheat), made once per bench run."""
    path = work / "filedrop" / "payload_200mb.bin"
    if not path.exists() or path.stat().st_size != SIZE:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            for _ in range(SIZE // _MB):
                fh.write(os.urandom(_MB))
    return path


def _entry(name: str, seconds: float, anchor: str, anchor_seconds: float, peak: float, target: float,
           note: str) -> Entry:
    return Entry(name=name, seconds=round(seconds, 3), anchor=anchor, anchor_seconds=round(anchor_seconds, 3),
                 ratio=round(anchor_seconds / seconds, 3), peak_rss_mb=round(peak, 1), bytes=SIZE,
                 mb_per_s=round(SIZE / _MB / seconds, 1), anchor_mb_per_s=round(SIZE / _MB / anchor_seconds, 1),
                 target_ratio=target, note=note)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds}s")


def _timed_child(function: str, *args: str, work: Path) -> tuple[float, float]:
    """Run ``function`` in a fresh interpreter; (seconds it measured, its peak RSS in MB)."""
    out = work / f"{function}.json"
    peak = run_isolated("bench.filedrop", function, *args, str(out))
    return json.loads(out.read_text())["seconds"], peak


# ------------------------------------------------------------------------------------------ SFTP


def _ensure_sshd() -> str:
    """Path of OpenSSH's sshd, installing Debian's openssh-server first if it is missing."""
    found = shutil.which("sshd") or "/usr/sbin/sshd"
    if Path(found).exists():
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "openssh-server"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    return "/usr/sbin/sshd"


@dataclass(frozen=True)
class _Sshd:
    port: int
    user: str
    client_key: Path
    host_pub: str
    known_hosts: Path


@contextmanager
def _sshd(work: Path) -> Iterator[_Sshd]:
    """An OpenSSH sshd on a loopback port: a generated host key, one authorized client key."""
    sshd = _ensure_sshd()
    folder = work / "sshd"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    port = _free_port()
    host_pub = (folder / "host_key.pub").read_text().strip()
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    config = folder / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1",
        f"HostKey {folder / 'host_key'}",
        f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",  # the keys live in a scratch folder, not in ~/.ssh
        "UsePAM no",
        "Subsystem sftp internal-sftp",
        "LogLevel ERROR",
        "",
    ]))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config), "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, process)
        yield _Sshd(port, getpass.getuser(), folder / "client_key", host_pub, known_hosts)
    finally:
        process.terminate()
        process.wait(10)


def _sftp_download(port: str, user: str, key: str, pin: str, remote: str, size: str, dest: str, out: str) -> None:
    """Child process: the platform's SFTP download of ``remote`` (connect, verify, promote) into ``dest``."""
    from huiju_connectors.remote_files import RemoteFile
    from huiju_connectors.sftp import SftpSource

    remote_path = Path(remote)
    started = time.perf_counter()
    with SftpSource("127.0.0.1", int(port), username=user, host_keys=pin, private_key=Path(key),
                    directory=str(remote_path.parent)) as source:
        fetched = source.download(RemoteFile(remote_path.name, int(size), datetime.now(UTC)), dest)
    seconds = time.perf_counter() - started
    assert fetched.size == int(size), fetched
    Path(out).write_text(json.dumps({"seconds": seconds}))


def _openssh_get(server: _Sshd, remote: Path, dest: Path, work: Path) -> float:
    """OpenSSH's own sftp client fetching ``remote``: the anchor."""
    batch = work / "sftp_batch"
    batch.write_text(f"get {remote} {dest}\n")
    command = ["sftp", "-q", "-b", str(batch), "-P", str(server.port), "-i", str(server.client_key),
               "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
               "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "IdentitiesOnly=yes", f"{server.user}@127.0.0.1"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def sftp_200mb(url: str, work: Path) -> Entry:
    """SFTP download of 200 MB on loopback from OpenSSH sshd vs OpenSSH's sftp client, same server, same run."""
    payload = _payload(work)
    dest = work / "filedrop" / "sftp_dest"
    dest.mkdir(parents=True, exist_ok=True)
    with _sshd(work) as server:
        anchor = _openssh_get(server, payload, dest / "anchor.bin", work)
        (dest / "anchor.bin").unlink()
        seconds, peak = _timed_child("_sftp_download", str(server.port), server.user, str(server.client_key),
                                     server.host_pub, str(payload), str(SIZE), str(dest), work=work)
    shutil.rmtree(dest, ignore_errors=True)
    return _entry("sftp_200mb", seconds, "OpenSSH sftp -b get from the same sshd", anchor, peak, 0.8,
                  note="ours: asyncssh, pinned host key, temp file, sha256, atomic promote; server: OpenSSH sshd")


# ------------------------------------------------------------------------------------------ FTP


def _ftp_download(port: str, user: str, password: str, name: str, size: str, dest: str, out: str) -> None:
    """Child process: the platform's FTP download of ``name`` (connect, SIZE check, verify, promote)."""
    from huiju_connectors.ftp import FtpSource
    from huiju_connectors.remote_files import RemoteFile

    started = time.perf_counter()
    with FtpSource("127.0.0.1", int(port), user=user, password=password) as source:
        fetched = source.download(RemoteFile(name, int(size), datetime.now(UTC)), dest)
    seconds = time.perf_counter() - started
    assert fetched.size == int(size), fetched
    Path(out).write_text(json.dumps({"seconds": seconds}))


def ftp_200mb(url: str, work: Path) -> Entry:
    """FTP download of 200 MB on loopback (pyftpdlib) vs `cp` of the same file on local disk."""
    from pyftpdlib.handlers import FTPHandler

    from huiju.demo.ftp_server import serve_ftp

    payload = _payload(work)
    dest = work / "filedrop" / "ftp_dest"
    dest.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run(["cp", str(payload), str(dest / "anchor.bin")], check=True)
    anchor = time.perf_counter() - started
    (dest / "anchor.bin").unlink()
    user, password = "bench", os.urandom(12).hex()
    handler = type("BenchFTPHandler", (FTPHandler,), {})
    with serve_ftp(payload.parent, user=user, password=password, handler=handler) as server:
        seconds, peak = _timed_child("_ftp_download", str(server.port), user, password, payload.name, str(SIZE),
                                     str(dest), work=work)
    shutil.rmtree(dest, ignore_errors=True)
    return _entry("ftp_200mb", seconds, "cp of the file on local disk", anchor, peak, 0.5,
                  note="ours: ftplib 256 KiB blocks, SIZE check, temp file, sha256, atomic promote; server: pyftpdlib")


BENCHMARKS = {"sftp_200mb": sftp_200mb, "ftp_200mb": ftp_200mb}
