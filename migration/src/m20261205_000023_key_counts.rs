//! `key_counts`: how many unrevoked API keys each org has, kept by triggers on
//! `api_keys`, so that the key quota is admitted from one counter row instead of counting
//! the org's keys (issue "Performance", target 6).
//!
//! The counter counts keys that are not revoked, expired ones included: a key expires
//! without any write, so no trigger could take it off. It is therefore an upper bound of
//! the org's active keys, which is all the quota needs: below the plan's limit, a new key
//! is admitted on the counter alone; at or above it, velu-core counts the active keys off
//! `ix_api_keys_org_active` (at most the limit's worth of index entries), so an org whose
//! expired keys fill the counter still gets their places back.
//!
//! Every path that writes `api_keys` (create, import, bootstrap, revoke, an org's keys
//! going with it) moves the counter inside the database, so none can forget it. Platform
//! keys (no org) are not counted.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CREATE: &str = "CREATE TABLE key_counts (
    org_id varchar(36) NOT NULL PRIMARY KEY
        REFERENCES organizations (id) ON DELETE CASCADE,
    unrevoked bigint NOT NULL
)";

/// The counts of the keys already there.
pub(crate) const BACKFILL: &str = "INSERT INTO key_counts (org_id, unrevoked)
    SELECT org_id, count(*) FROM api_keys
    WHERE org_id IS NOT NULL AND revoked_at IS NULL
    GROUP BY org_id";

/// PostgreSQL: one row trigger for inserts, deletes and changes of `revoked_at` (or of
/// `org_id`); key writes are rare, so a row trigger costs nothing that matters. The
/// function runs as the writer, under its row-level security policy, like the job
/// counters' triggers.
const POSTGRES: &str = "
CREATE FUNCTION velu_key_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.org_id IS NOT NULL AND OLD.revoked_at IS NULL THEN
            UPDATE key_counts SET unrevoked = unrevoked - 1 WHERE org_id = OLD.org_id;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.org_id IS NOT NULL AND NEW.revoked_at IS NULL THEN
            INSERT INTO key_counts (org_id, unrevoked) VALUES (NEW.org_id, 1)
            ON CONFLICT (org_id) DO UPDATE SET unrevoked = key_counts.unrevoked + 1;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER key_counts AFTER INSERT OR DELETE OR UPDATE OF revoked_at, org_id
    ON api_keys FOR EACH ROW EXECUTE FUNCTION velu_key_counts();";

/// SQLite: the same moves as three row triggers.
const SQLITE: [&str; 3] = [
    "CREATE TRIGGER key_counts_insert AFTER INSERT ON api_keys
     WHEN new.org_id IS NOT NULL AND new.revoked_at IS NULL BEGIN
        INSERT INTO key_counts (org_id, unrevoked) VALUES (new.org_id, 1)
        ON CONFLICT (org_id) DO UPDATE SET unrevoked = unrevoked + 1;
     END",
    "CREATE TRIGGER key_counts_delete AFTER DELETE ON api_keys
     WHEN old.org_id IS NOT NULL AND old.revoked_at IS NULL BEGIN
        UPDATE key_counts SET unrevoked = unrevoked - 1 WHERE org_id = old.org_id;
     END",
    "CREATE TRIGGER key_counts_update AFTER UPDATE OF revoked_at, org_id ON api_keys BEGIN
        UPDATE key_counts SET unrevoked = unrevoked - 1
        WHERE org_id = old.org_id AND old.revoked_at IS NULL;
        INSERT INTO key_counts (org_id, unrevoked)
        SELECT new.org_id, 1 WHERE new.org_id IS NOT NULL AND new.revoked_at IS NULL
        ON CONFLICT (org_id) DO UPDATE SET unrevoked = unrevoked + 1;
     END",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::exec(manager, CREATE).await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                // The backfill and the trigger in one transaction (migrations run in one on
                // PostgreSQL), with key writes held off: no key is missed or counted twice.
                crate::exec(manager, "LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE").await?;
                crate::exec_across_orgs(manager, &[BACKFILL]).await?;
                crate::exec(manager, POSTGRES).await?;
                crate::m20261202_000014_row_level_security::protect(manager, "key_counts").await?;
            }
            _ => {
                crate::exec(manager, BACKFILL).await?;
                for sql in SQLITE {
                    crate::exec(manager, sql).await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            crate::exec(manager, "DROP TRIGGER IF EXISTS key_counts ON api_keys").await?;
            crate::exec(manager, "DROP FUNCTION IF EXISTS velu_key_counts()").await?;
        } else {
            for t in [
                "key_counts_insert",
                "key_counts_delete",
                "key_counts_update",
            ] {
                crate::exec(manager, &format!("DROP TRIGGER IF EXISTS {t}")).await?;
            }
        }
        crate::exec(manager, "DROP TABLE key_counts").await
    }
}
