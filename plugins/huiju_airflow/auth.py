"""Airflow's login in front of Huiju's own pages on Airflow's API server (dbt docs, stewards' pages).

A plugin's FastAPI app is mounted on the API server as it is: Airflow does not put it behind its login.
:func:`airflow_user` is the FastAPI dependency that does, with Airflow's own rules: the user is the
one Airflow's UI and REST API see (:func:`airflow.api_fastapi.core_api.security.get_user`: a
``Bearer`` JWT, else the UI's session cookie, checked by the configured auth manager, revoked
tokens refused). An anonymous or expired visitor gets ``401`` (an invalid token ``403``); a browser
asking for a page is sent to Airflow's login page instead, which brings it back afterwards.

Use it on a router or app (``dependencies=[Depends(airflow_user)]``) or take the user as a
parameter (``user: AirflowUser``); :func:`protected_static_app` serves a static site behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.core_api.security import bearer_scheme, get_user
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import Response
from starlette.staticfiles import StaticFiles


def _wants_page(request: Request) -> bool:
    """A browser navigating (GET/HEAD of HTML), as opposed to a script that should see the status code."""
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


def login_url(request: Request) -> str:
    """Airflow's login page, coming back to this request's address afterwards."""
    return get_auth_manager().get_url_login(next_url=str(request.url))


async def airflow_user(request: Request,
                       bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> BaseUser:
    """The Airflow user making this request; 401/403 (a browser: a redirect to the login page) when none.

    Exactly Airflow's check (its ``get_user``): an explicit ``Authorization: Bearer`` token wins, else
    the UI's JWT cookie; expired, revoked or forged tokens are refused.
    """
    try:
        return await get_user(request, _oauth_token=None, bearer_credentials=bearer)
    except HTTPException as refused:
        if refused.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN) and _wants_page(request):
            raise HTTPException(status_code=status.HTTP_303_SEE_OTHER, detail="Log in to Airflow first",
                                headers={"Location": login_url(request)}) from refused
        raise


#: A route parameter holding the logged-in Airflow user (refused as :func:`airflow_user` says).
AirflowUser = Annotated[BaseUser, Depends(airflow_user)]


def protected_static_app(title: str, site: Path) -> FastAPI:
    """A FastAPI app serving the static site in ``site`` (``index.html`` for folders) to logged-in users only.

    The site may not exist yet (it appears with its first build, after the server started): until
    then every page is a 404 for a logged-in user, and still a refusal for anyone else.
    """
    files = StaticFiles(directory=site, html=True, check_dir=False)
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(airflow_user)])

    @app.api_route("/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def page(path: str, request: Request) -> Response:
        # StaticFiles' own path handling: resolved inside ``site`` only (no ``..`` escapes), 404 otherwise.
        return await files.get_response(files.get_path(request.scope), request.scope)

    return app
