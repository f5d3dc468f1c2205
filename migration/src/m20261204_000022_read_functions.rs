//! PostgreSQL only: a job's show and a page of an org's jobs in one round trip each
//! (`velu_show_job`, with the show's ended attempts in a second, `velu_show_job_attempts`;
//! `velu_list_jobs`), through `velu_enter_org`, the tenancy floor's org lookup and
//! binding as a function.
//!
//! An org-scoped read in a transaction costs four round trips: `BEGIN`, entering the org
//! (the statement that finds it and binds the transaction to it), the read, `ROLLBACK`.
//! On a show, the read itself is one primary-key lookup, on a page one index range: the
//! round trips were most of their cost (issue "Performance", target 4). A function runs
//! its statements in order inside the one statement that calls it, so the binding is in
//! place before the read, and it ends with that statement's implicit transaction:
//! nothing of it stays on the pooled connection. Called inside a transaction block
//! instead, it binds that transaction, as entering does.
//!
//! `velu_enter_org` finds the org named by `p_column` (`id` or `slug`) only if
//! `p_visible_to` is null (the operator, platform keys) or its id, binds the calling
//! transaction to it (`velu.org_id`, which the row-level security policies read) and
//! returns its id; for a missing or invisible org it binds nothing and returns null. The
//! caller decides the scope before calling (velu-core's `Principal::org_lookup`). The
//! functions run as their caller (`velu_app`), under its policies.
//!
//! `velu_list_jobs` reads newest first off the index of its filters, never sorting
//! (`enable_sort` and `jit` off on the function, as `Principal::enter_to_page` sets them
//! for a transaction): one statement per combination of filters and cursor, so each keeps
//! the plan of its index (a statement with `(p_status IS NULL OR ...)` would share one
//! plan between them, and a cursor that is not an index bound walks the history).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The functions this step creates.
const CREATE: &str = r#"
CREATE FUNCTION velu_enter_org(p_column text, p_org text, p_visible_to text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_found text;
BEGIN
    IF p_column = 'id' THEN
        SELECT o.id INTO v_found FROM organizations o
        WHERE o.id = p_org AND (p_visible_to IS NULL OR o.id = p_visible_to);
    ELSIF p_column = 'slug' THEN
        SELECT o.id INTO v_found FROM organizations o
        WHERE o.slug = p_org AND (p_visible_to IS NULL OR o.id = p_visible_to);
    ELSE
        RAISE EXCEPTION 'velu_enter_org: no org column %', p_column;
    END IF;
    IF v_found IS NOT NULL THEN
        PERFORM set_config('velu.org_id', v_found, true);
    END IF;
    RETURN v_found;
END $$;

CREATE FUNCTION velu_show_job(p_column text, p_org text, p_visible_to text, p_job text)
RETURNS SETOF jobs LANGUAGE plpgsql AS $$
DECLARE
    v_org text := velu_enter_org(p_column, p_org, p_visible_to);
BEGIN
    IF v_org IS NOT NULL THEN
        RETURN QUERY SELECT j.* FROM jobs j WHERE j.id = p_job AND j.org_id = v_org;
    END IF;
END $$;

CREATE FUNCTION velu_show_job_attempts(p_column text, p_org text, p_visible_to text, p_job text)
RETURNS SETOF job_attempts LANGUAGE plpgsql AS $$
DECLARE
    v_org text := velu_enter_org(p_column, p_org, p_visible_to);
BEGIN
    IF v_org IS NOT NULL THEN
        RETURN QUERY SELECT a.* FROM job_attempts a
        WHERE a.job_id = p_job
          AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = p_job AND j.org_id = v_org)
        ORDER BY a.attempt;
    END IF;
END $$;
"#;

/// What `down` drops, dependents first.
const DROP: &str = "
DROP FUNCTION IF EXISTS velu_list_jobs(text, text, text, text, text, text, bigint);
DROP FUNCTION IF EXISTS velu_show_job_attempts(text, text, text, text);
DROP FUNCTION IF EXISTS velu_show_job(text, text, text, text);
DROP FUNCTION IF EXISTS velu_enter_org(text, text, text);
";

/// One branch of `velu_list_jobs` per combination of its filters (status, task, cursor),
/// each as its test of which parameters are given and the `WHERE` of its reads over `jobs
/// j` in the org `v_org`: a statement per combination keeps the plan of its index. Later
/// versions of the function (m20261206_000026) build their branches from the same list.
pub(crate) fn list_branches() -> Vec<(String, String)> {
    let mut branches = Vec::new();
    for status in [false, true] {
        for task in [false, true] {
            for before in [false, true] {
                let test = [("p_status", status), ("p_task", task), ("p_before", before)]
                    .map(|(p, given)| format!("{p} IS {}NULL", if given { "NOT " } else { "" }))
                    .join(" AND ");
                let mut filter = String::from("j.org_id = v_org");
                for (column, param, given) in
                    [("status", "p_status", status), ("task", "p_task", task)]
                {
                    if given {
                        filter.push_str(&format!(" AND j.{column} = {param}"));
                    }
                }
                if before {
                    filter.push_str(" AND j.id < p_before");
                }
                branches.push((test, filter));
            }
        }
    }
    branches
}

/// `velu_list_jobs(column, org, visible_to, status, task, before, limit)`: a page of the
/// org's jobs newest first, with status `status` and task `task` when not null, ids
/// before `before` when not null, at most `limit`; one `RETURN QUERY` per combination
/// ([`list_branches`]).
pub(crate) fn list_function() -> String {
    let branches: Vec<String> = list_branches()
        .into_iter()
        .map(|(test, filter)| {
            format!(
                "IF {test} THEN\n        RETURN QUERY SELECT j.* FROM jobs j WHERE {filter}\n            ORDER BY j.id DESC LIMIT p_limit;\n        RETURN;\n    END IF;"
            )
        })
        .collect();
    format!(
        r#"
CREATE FUNCTION velu_list_jobs(
    p_column text, p_org text, p_visible_to text,
    p_status text, p_task text, p_before text, p_limit bigint
) RETURNS SETOF jobs LANGUAGE plpgsql SET enable_sort = off SET jit = off AS $$
DECLARE
    v_org text := velu_enter_org(p_column, p_org, p_visible_to);
BEGIN
    IF v_org IS NULL THEN
        RETURN;
    END IF;
    {}
END $$;
"#,
        branches.join("\n    ")
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(()); // in process, a round trip costs next to nothing
        }
        crate::exec(manager, CREATE).await?;
        crate::exec(manager, &list_function()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        crate::exec(manager, DROP).await
    }
}
