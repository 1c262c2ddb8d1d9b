#!/bin/sh
# Creates docker/secrets/ (0700) with one random secret per file (0600), once; never overwrites one.
# Edit warehouse_admin_url / warehouse_url to point at an external PostgreSQL instead of the compose one.
set -eu
umask 077
cd "$(dirname "$0")"
mkdir -p secrets
chmod 0700 secrets
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
keep() { [ -s "secrets/$1" ] || printf '%s\n' "$2" > "secrets/$1"; }
keep postgres_password "$(random)"
pg_password=$(cat secrets/postgres_password)
keep warehouse_admin_url "postgresql://postgres:${pg_password}@postgres:5432/huiju"
for role in huiju_owner huiju_landing_login huiju_validation_login huiju_transform_login huiju_share_reader_login \
            huiju_portal_login huiju_dashboard_login huiju_push_login huiju_sharing_login huiju_airflow_login; do
    keep "db_password_${role}" "$(random)"
done
keep pseudonym_key "$(random)"
keep airflow_fernet_key "$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
keep airflow_jwt_secret "$(random)"
keep portal_airflow_password "$(random)"
echo "secrets in $(pwd)/secrets"
