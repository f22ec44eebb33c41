#!/usr/bin/env bash
# End-to-end demo: synthetic sources -> real Airflow DAG runs -> readable summary.
# Called by `make demo`, which exports CCG_HOME, AIRFLOW_HOME and the DAG folder.
set -euo pipefail
BIN=.venv/bin
LOGS="$CCG_HOME/logs"
started=$(date +%s)

rm -rf "$CCG_HOME/warehouse" "$CCG_SOURCE_DIR" "$LOGS"
mkdir -p "$LOGS"

echo "==> 1/7 Generating synthetic CCG sources (seed ${DEMO_SEED}, as of ${DEMO_AS_OF})"
"$BIN/ccg" generate --out "$CCG_SOURCE_DIR" --seed "$DEMO_SEED" --as-of "$DEMO_AS_OF" \
  --companies "${DEMO_COMPANIES:-1500}" --prospects "${DEMO_PROSPECTS:-800}"

echo "==> 2/7 Preparing the Airflow metadata database in $AIRFLOW_HOME"
"$BIN/airflow" db migrate >"$LOGS/airflow-db-migrate.log" 2>&1

# DAG runs through Airflow's dag.test(), several in one process (Airflow starts once): each
# argument is DAG_ID@DATE. Prints every run's state and what its tasks returned (counts only).
run_dags() {
  local log="$LOGS/${1%%@*}.log"
  if "$BIN/python" -m ccg_pipeline.dagrun "$@" >"$log" 2>&1; then
    grep -E '^(DAG run |  [a-z_]+: )' "$log" | sed 's/^/    /'
    echo "    (task logs: $log)"
  else
    echo "    a DAG run FAILED; last lines of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}

echo "==> 3/7 Running the DAGs through Airflow (dag.test) for the interval ending ${DEMO_RUN_DATE}"
# In production the Assets of ingest and retention trigger ccg_statistics; here it runs after them.
run_dags "ccg_ingest@$DEMO_RUN_DATE" "ccg_retention@$DEMO_RUN_DATE" "ccg_statistics@$DEMO_RUN_DATE"

echo "==> 4/7 Data-subject requests: two arrive in the drop folder, are verified, and ccg_subject_requests answers them"
rm -rf "$CCG_HOME/requests" "$CCG_HOME/exports" "$CCG_HOME/outbox"
# Two customers' addresses from the demo portal database (never printed).
"$BIN/python" - <<'PY'
import json, os, sqlite3
from pathlib import Path
inbox = Path(os.environ["CCG_HOME"]) / "requests" / "inbox"
inbox.mkdir(parents=True, exist_ok=True)
db = sqlite3.connect(Path(os.environ["CCG_SOURCE_DIR"]) / "portal.db")
first, second = (r[0] for r in db.execute("SELECT email FROM users ORDER BY id LIMIT 2"))
received = os.environ["DEMO_AS_OF"] + "T10:00:00"  # arrived the day before the run
(inbox / "access.json").write_text(json.dumps({"type": "access", "email": first, "received_at": received}))
(inbox / "erase.json").write_text(json.dumps({"type": "erase", "email": second, "received_at": received}))
PY
run_dags "ccg_subject_requests@$DEMO_RUN_DATE"
for id in $("$BIN/ccg" request list | awk '/awaiting_verification/ {print $1}'); do
  "$BIN/ccg" request verify "$id" --at "${DEMO_RUN_DATE}T01:00:00" >/dev/null
done
run_dags "ccg_subject_requests@${DEMO_RUN_DATE}T01:00:00"
"$BIN/ccg" request list --all

echo
echo "==> 5/7 Compliance evidence: every clause of the notice checked against the data (ccg_evidence)"
"$BIN/ccg" marketing-list --as-of "$DEMO_AS_OF" | sed 's/^/    /'
run_dags "ccg_evidence@${DEMO_RUN_DATE}T06:00:00"
sed -n '/^| clause/,/^$/p' "$CCG_HOME/evidence/latest.md"
grep -h '^- \*\*Finding' "$CCG_HOME/evidence/latest.md" | sed 's/^/    /'

echo
echo "==> 6/7 Summary"
"$BIN/ccg" summary

echo
echo "==> 7/7 An analyst's query, on the published statistics file alone ($CCG_HOME/analyst/statistics.sqlite)"
"$BIN/ccg" statistics example
cat <<MSG

Demo finished in $(( $(date +%s) - started ))s.
Open the Airflow UI with:  make airflow   (then http://localhost:8080; DAGs ccg_ingest, ccg_retention, ccg_statistics, ccg_subject_requests, ccg_evidence;
                           the "Privacy" entry in its navigation shows retention, request clocks, the gate and the evidence)
Validation gate Data Docs: $CCG_HOME/gx/uncommitted/data_docs/local_site/index.html
Data dictionary:           docs/data-dictionary.md   (other examples: .venv/bin/ccg statistics example --table web_traffic_daily)
Access export package:     $CCG_HOME/exports/requests/   (CRM erasure instructions: $CCG_HOME/outbox/crm/)
Compliance evidence:       $CCG_HOME/evidence/latest.html   (or: .venv/bin/ccg evidence --as-of ${DEMO_AS_OF} --format md)
Breach impact / ROPA:      .venv/bin/ccg breach-impact --source personal.payments ;  .venv/bin/ccg ropa --out var/ropa
Retention dry run:         .venv/bin/ccg retention plan --as-of ${DEMO_AS_OF}
Re-run one DAG by hand:    .venv/bin/python -m ccg_pipeline.dagrun ccg_ingest ${DEMO_RUN_DATE}
MSG
