"""The data service API (API服务): a grant's approved fields and rows over HTTP, one token per grant.

Mounted by the portal at ``/api/share/v1`` as an application of its own (its own OpenAPI description at
``/api/share/v1/openapi.json``; the pages' login plays no part: the token is the credential). Each call:

- names its token (``Authorization: Bearer <token>``); an unknown token, or one whose grant was revoked or
  expired, is refused at once (401) — the token is looked up live, never cached;
- is limited per token (``config/sharing/policy.yaml`` ``api.requests_per_minute``; 429 with Retry-After), counted
  in the warehouse (:func:`huiju.sharing.grants.admit_call`), so the limit holds across every portal process;
- reads one page through the grant's own database function (:func:`huiju.sharing.grants.read_page`): only the
  approved fields of the approved rows, and an ``api_read`` row in the audit trail per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import psycopg
from fastapi import FastAPI, Header, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from huiju.sharing import audit, grants
from huiju.sharing.config import ApiPolicy

PREFIX = "/api/share/v1"


class Page(BaseModel):
    """One page of a grant's rows."""

    resource: str
    grant_id: int
    fields: list[str]
    page: int
    page_size: int
    rows: list[dict[str, Any]]
    next_page: int | None


class GrantInfo(BaseModel):
    """What a token may read, and until when."""

    resource: str
    grant_id: int
    fields: list[str]
    row_scope: dict[str, list[str]]
    expires_at: str


class Problem(BaseModel):
    """Why a call was refused (Chinese)."""

    detail: str


def _refused(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


def create_data_api(sharing_url: Callable[[], str], policy: ApiPolicy) -> FastAPI:
    """The API application; ``sharing_url`` gives the sharing component's database URL when a call comes."""
    api = FastAPI(title="汇聚平台 · 数据共享接口服务", version="1.0",
                  description="已批准共享授权的数据服务：每个授权一个令牌，仅返回批准的信息项与数据范围；"
                              "授权撤销或到期后令牌立即失效。每次调用均记入审计日志。",
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    errors: dict[int | str, dict[str, Any]] = {401: {"model": Problem, "description": "令牌无效、已撤销或已到期"},
                                               429: {"model": Problem, "description": "调用过于频繁"}}

    def authorised(conn: psycopg.Connection, authorization: str | None) -> dict[str, Any] | JSONResponse:
        token = (authorization or "").removeprefix("Bearer ").strip()
        if not token or token == authorization:
            return _refused(401, "缺少令牌：请在请求头 Authorization: Bearer <令牌> 中提供共享授权的接口令牌",
                            **{"WWW-Authenticate": "Bearer"})
        grant = grants.live_grant_for_token(conn, token)
        if grant is None:
            audit.record(conn, "api_refused", "api", detail={"reason": "token unknown, revoked or expired"})
            return _refused(401, "令牌无效，或其共享授权已撤销、已到期", **{"WWW-Authenticate": "Bearer"})
        wait = grants.admit_call(conn, token, policy.requests_per_minute)
        conn.commit()  # the counter's row is not held while the page is read
        if wait:
            audit.record(conn, "api_throttled", "api", request_id=grant["request_id"], grant_id=grant["grant_id"])
            return _refused(429, f"调用过于频繁（每分钟最多 {policy.requests_per_minute} 次），请稍后再试",
                            **{"Retry-After": str(int(wait) + 1)})
        return grant

    @api.get("/grant", response_model=GrantInfo, responses=errors, summary="令牌对应的共享授权")
    def grant_info(authorization: Annotated[str | None, Header()] = None) -> Any:
        with psycopg.connect(sharing_url()) as conn:
            grant = authorised(conn, authorization)
            if isinstance(grant, JSONResponse):
                return grant
            return GrantInfo(resource=grant["resource_id"], grant_id=grant["grant_id"],
                             fields=list(grant["fields"]), row_scope=grant["row_scope"],
                             expires_at=grant["expires_at"].isoformat())

    @api.get("/data", response_model=Page, responses=errors, summary="分页读取授权数据")
    def data(authorization: Annotated[str | None, Header()] = None,
             page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
             page_size: Annotated[int | None, Query(ge=1)] = None) -> Any:
        size = min(page_size or policy.page_size, policy.max_page_size)
        with psycopg.connect(sharing_url()) as conn:
            grant = authorised(conn, authorization)
            if isinstance(grant, JSONResponse):
                return grant
            rows = grants.read_page(conn, grant, (page - 1) * size, size + 1)
        more = len(rows) > size
        return JSONResponse(jsonable_encoder(Page(
            resource=grant["resource_id"], grant_id=grant["grant_id"], fields=list(grant["fields"]), page=page,
            page_size=size, rows=rows[:size], next_page=page + 1 if more else None)))

    return api
