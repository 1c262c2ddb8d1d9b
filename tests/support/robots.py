"""HTTP servers on loopback standing in for DingTalk's and WeCom's group-robot APIs.

Each checks a post the way the real API does, and answers as it does: DingTalk's token and,
when the robot has a secret, its 加签 signature (``timestamp`` within an hour, ``sign`` the
base64 HMAC-SHA256 of ``"<timestamp>\\n<secret>"``, computed here independently of the code under
test); WeCom's key and payload (``msgtype`` markdown or text, content within its byte limit).
A receiver can be stopped and started again on the same port (an outage), or told to answer
with an error code (rate limit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal


@dataclass
class RobotPost:
    """One post a receiver accepted (or refused: ``errcode`` not 0)."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    payload: dict[str, Any]
    errcode: int


@dataclass
class RobotReceiver:
    """A fake robot API: ``kind`` dingtalk (token, optional secret) or wecom (key)."""

    kind: Literal["dingtalk", "wecom"]
    credential: str  # DingTalk's access token, WeCom's webhook key
    secret: str | None = None  # DingTalk 加签
    port: int = 0
    answer_errcode: int = 0  # answer every post with this errcode (e.g. 45009 rate limit)
    posts: list[RobotPost] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The API base a Connection's host names."""
        return f"http://127.0.0.1:{self.port}"

    def accepted(self) -> list[RobotPost]:
        """Posts answered with errcode 0."""
        return [p for p in self.posts if p.errcode == 0]

    def start(self) -> RobotReceiver:
        """Listen (again, on the same port after :meth:`stop`)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                errcode = receiver.check(parsed.path, query, payload)
                receiver.posts.append(RobotPost(parsed.path, query, dict(self.headers.items()), payload, errcode))
                answer = json.dumps({"errcode": errcode, "errmsg": "ok" if errcode == 0 else "refused"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __enter__(self) -> RobotReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def check(self, path: str, query: dict[str, str], payload: dict[str, Any]) -> int:
        """The errcode the real API would answer (0: accepted)."""
        if self.answer_errcode:
            return self.answer_errcode
        if self.kind == "dingtalk":
            return self._check_dingtalk(path, query, payload)
        return self._check_wecom(path, query, payload)

    def _check_dingtalk(self, path: str, query: dict[str, str], payload: dict[str, Any]) -> int:
        if path != "/robot/send" or query.get("access_token") != self.credential:
            return 300001  # token is not exist
        if self.secret is not None:
            timestamp = query.get("timestamp", "")
            if not timestamp.isdigit() or abs(int(timestamp) - time.time() * 1000) > 3600_000:
                return 310000  # sign not match / timestamp invalid
            digest = hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256).digest()
            if query.get("sign") != base64.b64encode(digest).decode():  # parse_qsl decoded the url-encoding
                return 310000
        if payload.get("msgtype") != "markdown" or not payload.get("markdown", {}).get("text"):
            return 40035  # missing parameter
        return 0

    def _check_wecom(self, path: str, query: dict[str, str], payload: dict[str, Any]) -> int:
        if path != "/cgi-bin/webhook/send" or query.get("key") != self.credential:
            return 93000  # invalid webhook url
        msgtype = payload.get("msgtype")
        limit = {"markdown": 4096, "text": 2048}.get(str(msgtype))
        content = payload.get(str(msgtype), {}).get("content")
        if limit is None or not content:
            return 40008  # invalid message type
        if len(content.encode()) > limit:
            return 40058  # content exceeds the limit
        return 0
