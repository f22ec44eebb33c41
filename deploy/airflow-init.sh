#!/usr/bin/env bash
# One-shot initialisation, run by the airflow-init service and by the native deployment test:
# the Airflow metadata schema, the UI/API admin account, the writers' pool, and the warehouse
# zones with the analysts' grants. Idempotent: safe to rerun after an upgrade.
set -euo pipefail
: "${AIRFLOW__CORE__FERNET_KEY:?set it in .env (make env)}"
: "${AIRFLOW__API_AUTH__JWT_SECRET:?set it in .env (make env)}"
: "${AIRFLOW_ADMIN_PASSWORD:?set it in .env (make env)}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?}"
: "${CCG_WAREHOUSE_URL:?}"

echo "airflow-init: migrating the Airflow metadata database"
airflow db migrate

# The admin password comes from .env and is written before any server starts, so the auth
# manager never generates (and prints) one of its own. Owner-only file.
echo "airflow-init: writing the admin account"
python - <<'PY'
import json, os
from pathlib import Path

from ccg_pipeline.private_files import write_private

path = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
path.parent.mkdir(parents=True, exist_ok=True)
write_private(path, json.dumps({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]}))
PY
echo "airflow-init: the warehouse writers' pool (1 slot on SQLite, else CCG_WRITER_SLOTS or 4)"
python -c "from ccg_pipeline.warehouse.writers import ensure_writers_pool; ensure_writers_pool()"
echo "airflow-init: migrating the warehouse zones (and the analysts' grants)"
ccg db upgrade
echo "airflow-init: done"
