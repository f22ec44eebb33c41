"""Airflow plugin: the "Privacy" entry in the UI's navigation, for data engineers.

Retention due/deleted/held per rule, subject requests with their SLA countdown, the newest
validation gate and compliance evidence. The logic lives in `ccg_pipeline.privacy_view`; this
file only registers the FastAPI app with the api-server and the nav entry that frames it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from ccg_pipeline.privacy_view.app import URL_PREFIX, create_app


class CcgPrivacyPlugin(AirflowPlugin):
    name = "ccg_privacy"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "CCG Privacy"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Privacy",
            # Relative to the UI's base URL, so the view also works behind a path prefix.
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "url_route": "ccg-privacy",
            "nav_top_level": True,  # beside Dags and Assets, not inside a menu
        }
    ]
