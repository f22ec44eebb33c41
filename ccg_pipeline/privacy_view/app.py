"""The Privacy view's FastAPI app, mounted in the Airflow api-server by `plugins/ccg_privacy.py`.

Plugin apps are not protected by Airflow on their own: every route here depends on an Airflow
login (the UI's session cookie or a bearer token) and on the auth manager allowing the
custom view `RESOURCE_NAME`, so the view is as private as the rest of the UI.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from sqlalchemy.engine import Engine

from ccg_pipeline.config import Settings
from ccg_pipeline.privacy_view import page, snapshot

URL_PREFIX = "/ccg-privacy"
RESOURCE_NAME = "CCG Privacy"
EVIDENCE_PATH = "evidence/latest.html"


@lru_cache(maxsize=4)
def _engine(url: str) -> Engine:
    """One pooled engine per warehouse URL for the life of the api-server worker."""
    from ccg_pipeline.warehouse.engine import create_warehouse_engine

    return create_warehouse_engine(url, pool_pre_ping=True)


def _airflow_login() -> Callable[..., Any]:
    """A dependency that resolves the Airflow user and asks the auth manager about this view."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import get_user

    def allowed(user: Any = Depends(get_user)) -> None:  # noqa: B008 (FastAPI idiom)
        if not get_auth_manager().is_authorized_custom_view(
            method="GET", resource_name=RESOURCE_NAME, user=user
        ):
            raise HTTPException(status_code=403, detail="not allowed to open the Privacy view")

    return allowed


def create_app(
    settings: Callable[[], Settings] = Settings.from_env,
    today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    login: Callable[..., Any] | None = None,
) -> FastAPI:
    """The app; `login` replaces the Airflow login check only in unit tests of the rendering."""
    app = FastAPI(
        title="CCG Privacy view",
        dependencies=[Depends(login or _airflow_login())],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def current() -> Any:
        return snapshot(_engine(settings().warehouse_url), today())

    @app.get("/", response_class=HTMLResponse)
    def view() -> str:
        evidence_file = settings().home / EVIDENCE_PATH
        return page.render(current(), EVIDENCE_PATH if evidence_file.is_file() else None)

    @app.get("/api/snapshot")
    def snapshot_json() -> JSONResponse:
        return JSONResponse(jsonable_encoder(current().as_dict()))

    @app.get("/" + EVIDENCE_PATH)
    def evidence_report() -> FileResponse:
        path = settings().home / EVIDENCE_PATH
        if not path.is_file():
            raise HTTPException(status_code=404, detail="no evidence report yet")
        return FileResponse(path, media_type="text/html")

    return app
