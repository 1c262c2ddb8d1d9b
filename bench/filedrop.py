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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from huiju_demo.ports import free_port

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


def _entry(name: str, seconds: float, anchor: str, anchor_seconds: float, peak: float, target: float | None,
           note: str) -> Entry:
    return Entry(name=name, seconds=round(seconds, 3), anchor=anchor, anchor_seconds=round(anchor_seconds, 3),
                 ratio=round(anchor_seconds / seconds, 3), peak_rss_mb=round(peak, 1), bytes=SIZE,
                 mb_per_s=round(SIZE / _MB / seconds, 1), anchor_mb_per_s=round(SIZE / _MB / anchor_seconds, 1),
                 target_ratio=target, note=note)


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
    port = free_port()
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


def _sftp_download_paramiko(port: str, user: str, key: str, pin: str, remote: str, size: str, dest: str,
                            out: str) -> None:
    """Child process: paramiko's ``SFTPClient.getfo`` with the same pinned key, temp name, sha256 and promote.

    Measured for comparison only (the connector ships asyncssh): the issue reports paramiko at
    about 0.58 of OpenSSH with stalls.
    """
    import base64
    import hashlib
    import uuid

    import paramiko
    from huiju_connectors.remote_files import promote

    remote_path = Path(remote)
    started = time.perf_counter()
    kind, blob = pin.split()[:2]
    expected = paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
    transport = paramiko.Transport(("127.0.0.1", int(port)))
    try:
        transport.connect()
        if transport.get_remote_server_key() != expected:
            raise RuntimeError("host key is not the pinned key")
        transport.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(key))
        sftp = paramiko.SFTPClient.from_transport(transport)
        final = Path(dest) / remote_path.name
        tmp = Path(dest) / f".{remote_path.name}.{uuid.uuid4().hex[:12]}.partial"
        hasher = hashlib.sha256()

        class _Hashing:
            def __init__(self, fh: object) -> None:
                self.fh = fh

            def write(self, data: bytes) -> None:
                hasher.update(data)
                self.fh.write(data)  # type: ignore[attr-defined]

        with tmp.open("wb") as fh:
            got = sftp.getfo(str(remote_path), _Hashing(fh))
        if got != int(size):
            raise RuntimeError(f"received {got} of {size} bytes")
        promote(tmp, final)
    finally:
        transport.close()
    seconds = time.perf_counter() - started
    Path(out).write_text(json.dumps({"seconds": seconds, "sha256": hasher.hexdigest()}))


# Each benchmark runs its anchor and ours TRIALS times, interleaved, and compares the best of
# each: on a machine shared with other jobs one measurement is mostly a sample of the neighbours'
# load (single SFTP runs here ranged from 0.5 to 2.9 of the anchor within a minute). Every
# trial's figure is kept in the entry's note.
TRIALS = 3


def _trials(anchor: Callable[[], float], ours: Callable[[], tuple[float, float]]) -> tuple[float, float, float, str]:
    """(best anchor seconds, best own seconds, peak RSS, a note listing every trial)."""
    anchors: list[float] = []
    owns: list[float] = []
    peak = 0.0
    for _ in range(TRIALS):
        anchors.append(anchor())
        seconds, rss = ours()
        owns.append(seconds)
        peak = max(peak, rss)
    listing = ", ".join(f"{a:.2f}/{o:.2f}" for a, o in zip(anchors, owns, strict=True))
    return min(anchors), min(owns), peak, f"best of {TRIALS} interleaved trials (anchor/ours s: {listing})"


def _download_dest(work: Path, name: str) -> Path:
    """The folder a download benchmark's trials write to (each trial's file removed by :func:`_empty`)."""
    dest = work / "filedrop" / name
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def _empty(dest: Path) -> None:
    """Remove a trial's download, so that the next trial writes a new file."""
    for path in dest.iterdir():
        path.unlink()


def _sftp_bench(name: str, child: str, note: str, work: Path, target: float | None = 0.8) -> Entry:
    payload = _payload(work)
    dest = _download_dest(work, "sftp_dest")

    with _sshd(work) as server:

        def anchor() -> float:
            seconds = _openssh_get(server, payload, dest / "anchor.bin", work)
            _empty(dest)
            return seconds

        def ours() -> tuple[float, float]:
            measured = _timed_child(child, str(server.port), server.user, str(server.client_key), server.host_pub,
                                    str(payload), str(SIZE), str(dest), work=work)
            _empty(dest)
            return measured

        anchor_s, seconds, peak, trials = _trials(anchor, ours)
    shutil.rmtree(dest, ignore_errors=True)
    return _entry(name, seconds, "OpenSSH sftp -b get from the same sshd", anchor_s, peak, target,
                  note=f"{note}; server: OpenSSH sshd; {trials}")


def sftp_200mb(url: str, work: Path) -> Entry:
    """SFTP download of 200 MB on loopback from OpenSSH sshd vs OpenSSH's sftp client, same server, same run."""
    return _sftp_bench("sftp_200mb", "_sftp_download",
                       "ours (shipped): asyncssh, 255 KiB reads x32, 256 KiB packets, pinned host key, temp file, "
                       "sha256 while receiving, atomic promote", work)


def sftp_200mb_paramiko(url: str, work: Path) -> Entry:
    """The same download with paramiko's getfo (not shipped): the comparison the issue asks for."""
    return _sftp_bench("sftp_200mb_paramiko", "_sftp_download_paramiko",
                       "paramiko SFTPClient.getfo (NOT shipped, comparison only), pinned host key, temp file, "
                       "sha256 while receiving, atomic promote", work, target=None)  # no target: not shipped


# ------------------------------------------------------------------------------------------ FTP


def _ftp_download(port: str, user: str, password: str, name: str, size: str, dest: str, out: str) -> None:
    """Child process: the platform's FTP download of ``name`` (connect, SIZE check, verify, promote)."""
    from huiju_connectors.ftp import FtpSource
    from huiju_connectors.remote_files import RemoteFile

    started = time.perf_counter()
    with FtpSource("127.0.0.1", int(port), user=user, password=password, tls=False) as source:  # loopback
        fetched = source.download(RemoteFile(name, int(size), datetime.now(UTC)), dest)
    seconds = time.perf_counter() - started
    assert fetched.size == int(size), fetched
    Path(out).write_text(json.dumps({"seconds": seconds}))


def _evict(path: Path) -> None:
    """Drop ``path`` from the page cache (this file only), so the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # only clean pages can be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _cp_to_disk(payload: Path, dest: Path) -> float:
    """The anchor: ``cp`` of the file on local disk, and ``sync`` of the copy, so it is on disk too.

    A bare ``cp`` of a file that sits in the page cache is one in-kernel memory copy
    (``copy_file_range``) that ends before a byte reaches the disk; our download ends with an
    fsync (a file the platform has "received" must survive a crash), so the anchor does too, and
    both start from a source that is not cached.
    """
    _evict(payload)
    started = time.perf_counter()
    subprocess.run(["cp", str(payload), str(dest)], check=True)
    subprocess.run(["sync", str(dest)], check=True)  # coreutils sync FILE: fsync that file
    return time.perf_counter() - started


def ftp_200mb(url: str, work: Path) -> Entry:
    """FTP download of 200 MB on loopback (pyftpdlib) vs `cp` of the same file on local disk."""
    from huiju_demo.ftp_server import serve_ftp
    from pyftpdlib.handlers import DTPHandler, FTPHandler

    payload = _payload(work)
    dest = _download_dest(work, "ftp_dest")

    def anchor() -> float:
        seconds = _cp_to_disk(payload, dest / "anchor.bin")
        _empty(dest)
        return seconds

    user, password = "bench", os.urandom(12).hex()
    # pyftpdlib sends with sendfile() in 64 KiB steps, one pass through its Python event loop
    # each; 1 MiB steps keep the server from being what is measured (it is not the client).
    dtp = type("BenchDTPHandler", (DTPHandler,), {"ac_out_buffer_size": 1 << 20})
    handler = type("BenchFTPHandler", (FTPHandler,), {"dtp_handler": dtp})
    with serve_ftp(payload.parent, user=user, password=password, handler=handler) as server:

        def ours() -> tuple[float, float]:
            _evict(payload)
            measured = _timed_child("_ftp_download", str(server.port), user, password, payload.name, str(SIZE),
                                    str(dest), work=work)
            _empty(dest)
            return measured

        anchor_s, seconds, peak, trials = _trials(anchor, ours)
    shutil.rmtree(dest, ignore_errors=True)
    return _entry("ftp_200mb", seconds, "cp of the uncached file on local disk + sync of the copy", anchor_s, peak,
                  0.5, note="ours: ftplib control, one 1 MiB recv_into buffer written and hashed in one thread, "
                  "writeback started every 8 MiB, SIZE check, temp file, sha256, fsync + atomic promote; "
                  "server: pyftpdlib (sendfile, 1 MiB steps); "
                  f"the anchor is cp + sync from an uncached source because ours ends with an fsync; {trials}")


BENCHMARKS = {"sftp_200mb": sftp_200mb, "sftp_200mb_paramiko": sftp_200mb_paramiko, "ftp_200mb": ftp_200mb}
