#!/usr/bin/env bash
# Creates the Airflow metadata database, the warehouse and their roles. Run once by the postgres
# image on an empty volume (/docker-entrypoint-initdb.d), and by the native deployment test with
# PGHOST/PGPORT/PGPASSWORD pointing at its server. Passwords arrive as psql variables, quoted by
# psql itself (:'var'), never spliced into SQL text. Idempotent.
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?}" "${CCG_PIPELINE_DB_PASSWORD:?}" "${CCG_ANALYST_DB_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v airflow_pw="$AIRFLOW_DB_PASSWORD" \
  -v pipeline_pw="$CCG_PIPELINE_DB_PASSWORD" \
  -v analyst_pw="$CCG_ANALYST_DB_PASSWORD" <<'SQL'
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airflow') AS new_airflow \gset
\if :new_airflow
  CREATE ROLE airflow LOGIN;
\endif
ALTER ROLE airflow PASSWORD :'airflow_pw';
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = 'airflow') AS new_airflow_db \gset
\if :new_airflow_db
  CREATE DATABASE airflow OWNER airflow;
\endif

-- The warehouse owner: the pipeline's tasks and migrations connect as this role.
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ccg_pipeline') AS new_pipeline \gset
\if :new_pipeline
  CREATE ROLE ccg_pipeline LOGIN;
\endif
ALTER ROLE ccg_pipeline PASSWORD :'pipeline_pw';
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ccg_warehouse') AS new_warehouse \gset
\if :new_warehouse
  CREATE DATABASE ccg_warehouse OWNER ccg_pipeline;
\endif
REVOKE ALL ON DATABASE ccg_warehouse FROM PUBLIC;
GRANT CONNECT ON DATABASE ccg_warehouse TO ccg_pipeline;

-- Analysts: ccg_analyst (NOLOGIN) carries the grants, which the warehouse migrations give on the
-- statistics schema only; ccg_analyst_login is the account analysts connect with.
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ccg_analyst') AS new_analyst \gset
\if :new_analyst
  CREATE ROLE ccg_analyst NOLOGIN;
\endif
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ccg_analyst_login') AS new_login \gset
\if :new_login
  CREATE ROLE ccg_analyst_login LOGIN IN ROLE ccg_analyst;
\endif
ALTER ROLE ccg_analyst_login PASSWORD :'analyst_pw';
GRANT CONNECT ON DATABASE ccg_warehouse TO ccg_analyst;
SQL
