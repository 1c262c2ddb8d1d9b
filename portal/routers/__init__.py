"""The portal's routers, one per area; the next areas (catalogue, sharing requests, data service API) add theirs."""

from __future__ import annotations

from huiju_portal.routers import admin, auth, history, home, sharing, submit

ROUTERS = (auth.router, home.router, submit.router, history.router, admin.router, sharing.router)
