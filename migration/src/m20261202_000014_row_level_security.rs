//! Row-level security on PostgreSQL (docs/security.md); nothing on SQLite, where the
//! tenancy type is the wall.
//!
//! * The role `velu_app` (no login, not superuser, no `BYPASSRLS`) is created if missing
//!   and granted to the connecting user; Velu's pooled connections run as it. It may
//!   read and write rows of Velu's tables, never change the schema; `seaql_migrations` is
//!   read-only to it. Default privileges give it the same rights on tables later steps
//!   create (those steps enable row-level security themselves, with [`protect`]).
//! * Every tenant table gets `ENABLE` and `FORCE ROW LEVEL SECURITY` and a policy: a row
//!   is visible and writable when its org is the transaction's `velu.org_id` (set by the
//!   tenancy floor) or when the transaction set `velu.cross_org = 'on'` (the named
//!   cross-org paths). With neither, nothing: fail closed. Tables keyed by a job or a
//!   schedule (`job_attempts`, `schedule_ticks`) see through their parent's policy.
//! * `organizations` is readable by everyone (the tenancy floor looks an org up by slug
//!   before any org is bound, and then decides visibility itself) and writable only for
//!   the bound org or across orgs. `queue_pauses` shows task-wide pauses to everyone and
//!   an org's pause to that org; only the org's own pause is writable in its name.
//! * Tables of steps 10 to 13 (`org_secrets`, `job_events`, `usage_daily`,
//!   `billing_events`) are covered when they exist, as is any other table with `org_id`.
//!
//! `down` removes the policies and the grants but leaves the role: roles belong to the
//! whole server, and other databases on it may use it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The role Velu's connections run as (velu-core's `db::rls::APP_ROLE`).
pub(crate) const APP_ROLE: &str = "velu_app";

/// The tables this step knows; those absent when it runs are skipped.
const TABLES: [&str; 13] = [
    "organizations",
    "api_keys",
    "audit_events",
    "jobs",
    "job_attempts",
    "queue_pauses",
    "workers",
    "schedules",
    "schedule_ticks",
    "org_secrets",
    "job_events",
    "usage_daily",
    "billing_events",
];

/// A transaction that crosses orgs on purpose.
const CROSS: &str = "current_setting('velu.cross_org', true) = 'on'";
/// The org the transaction is bound to ('' or NULL when none).
const BOUND: &str = "current_setting('velu.org_id', true)";

/// Creates the role if missing and grants it to the connecting user; tolerates another
/// database's migration doing the same at the same moment (roles are server-wide).
const CREATE_ROLE: &str = r#"
DO $$
BEGIN
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'velu_app') THEN
            CREATE ROLE velu_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        END IF;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;
        WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'cannot create role velu_app'
                USING HINT = 'as a superuser: CREATE ROLE velu_app NOLOGIN; GRANT velu_app TO '
                    || quote_ident(current_user) || '; then run migrate up again';
    END;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'velu_app' AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'role velu_app must not be superuser nor BYPASSRLS';
    END IF;
    IF NOT pg_has_role(current_user, 'velu_app', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT velu_app TO %I', current_user);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
END
$$
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        crate::exec(manager, CREATE_ROLE).await?;
        for sql in [
            format!("GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE}"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO {APP_ROLE}"
            ),
            format!("REVOKE INSERT, UPDATE, DELETE ON seaql_migrations FROM {APP_ROLE}"),
            format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {APP_ROLE}"),
            format!(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}"
            ),
            format!(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} \
                 GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}"
            ),
        ] {
            in_current_schema(manager, &sql).await?;
        }
        let mut tables: Vec<String> = Vec::new();
        for table in TABLES {
            if manager.has_table(table).await? {
                tables.push(table.to_owned());
            }
        }
        for table in tables_with_org_id(manager).await? {
            if !tables.contains(&table) {
                tables.push(table);
            }
        }
        for table in &tables {
            protect(manager, table).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let rows = manager
            .get_connection()
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT DISTINCT tablename::text FROM pg_policies \
                 WHERE schemaname = current_schema() AND policyname LIKE 'velu\\_%'",
            ))
            .await?;
        for row in rows {
            let table: String = row.try_get_by_index(0)?;
            unprotect(manager, &table).await?;
        }
        for sql in [
            format!(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} \
                 REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE}"
            ),
            format!(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} \
                 REVOKE USAGE, SELECT ON SEQUENCES FROM {APP_ROLE}"
            ),
            format!("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {SCHEMA} FROM {APP_ROLE}"),
            format!("REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM {APP_ROLE}"),
            format!("REVOKE USAGE ON SCHEMA {SCHEMA} FROM {APP_ROLE}"),
        ] {
            in_current_schema(manager, &sql).await?;
        }
        Ok(())
    }
}

/// Placeholder for the schema the migrations create tables in (`current_schema()`).
const SCHEMA: &str = "{schema}";

/// Runs `sql` with [`SCHEMA`] replaced by the current schema, quoted.
async fn in_current_schema(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    let quoted = sql.replace('\'', "''");
    crate::exec(
        manager,
        &format!(
            "DO $$ BEGIN EXECUTE replace('{quoted}', '{SCHEMA}', quote_ident(current_schema())); END $$"
        ),
    )
    .await
}

/// The tables of the current schema with an `org_id` column.
async fn tables_with_org_id(manager: &SchemaManager<'_>) -> Result<Vec<String>, DbErr> {
    let rows = manager
        .get_connection()
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name = 'org_id' \
             ORDER BY 1",
        ))
        .await?;
    rows.iter().map(|r| r.try_get_by_index(0)).collect()
}

/// Does `table` have column `column`?
async fn has_column(manager: &SchemaManager<'_>, table: &str, column: &str) -> Result<bool, DbErr> {
    let row = manager
        .get_connection()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
            [table.into(), column.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0)
        > 0)
}

/// Enables and forces row-level security on `table` with the policy its columns call
/// for: its `org_id`, else its job's or schedule's policy, else cross-org transactions
/// only. PostgreSQL only; later steps that add a tenant table call it too.
pub(crate) async fn protect(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let t = quote(table);
    let mut sql = vec![
        format!("ALTER TABLE {t} ENABLE ROW LEVEL SECURITY"),
        format!("ALTER TABLE {t} FORCE ROW LEVEL SECURITY"),
    ];
    match table {
        "organizations" => {
            sql.push(format!(
                "CREATE POLICY velu_read ON {t} FOR SELECT USING (true)"
            ));
            let own = format!("{CROSS} OR id = {BOUND}");
            sql.push(format!(
                "CREATE POLICY velu_tenant ON {t} USING ({own}) WITH CHECK ({own})"
            ));
        }
        "queue_pauses" => {
            let own = format!("{CROSS} OR (scope = 'org' AND target = {BOUND})");
            sql.push(format!(
                "CREATE POLICY velu_read ON {t} FOR SELECT USING ({own} OR scope = 'task')"
            ));
            sql.push(format!(
                "CREATE POLICY velu_tenant ON {t} USING ({own}) WITH CHECK ({own})"
            ));
        }
        _ => {
            let rule = if has_column(manager, table, "org_id").await? {
                format!("{CROSS} OR org_id = {BOUND}")
            } else if has_column(manager, table, "job_id").await? {
                format!("{CROSS} OR EXISTS (SELECT 1 FROM jobs p WHERE p.id = {t}.job_id)")
            } else if has_column(manager, table, "schedule_id").await? {
                format!(
                    "{CROSS} OR EXISTS (SELECT 1 FROM schedules p WHERE p.id = {t}.schedule_id)"
                )
            } else {
                CROSS.to_owned()
            };
            sql.push(format!(
                "CREATE POLICY velu_tenant ON {t} USING ({rule}) WITH CHECK ({rule})"
            ));
        }
    }
    for s in sql {
        crate::exec(manager, &s).await?;
    }
    Ok(())
}

/// Undoes [`protect`].
async fn unprotect(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    let t = quote(table);
    for s in [
        format!("DROP POLICY IF EXISTS velu_read ON {t}"),
        format!("DROP POLICY IF EXISTS velu_tenant ON {t}"),
        format!("ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY"),
        format!("ALTER TABLE {t} DISABLE ROW LEVEL SECURITY"),
    ] {
        crate::exec(manager, &s).await?;
    }
    Ok(())
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
