//! `last_used_at` without a database write per request: uses are noted in memory and
//! written in one batch by a background task (and on shutdown).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};

use crate::entity::api_keys;
use crate::{CoreResult, Velu};

/// Last-use times not yet written, by key id.
#[derive(Debug, Default)]
pub struct LastUsed {
    pending: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl LastUsed {
    /// Notes that `kid` was used at `at`.
    pub fn touch(&self, kid: &str, at: DateTime<Utc>) {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(kid) {
            Some(t) if *t >= at => {}
            Some(t) => *t = at,
            None => {
                map.insert(kid.to_owned(), at);
            }
        }
    }

    fn take(&self) -> HashMap<String, DateTime<Utc>> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Number of keys waiting to be written.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Writes the pending last-use times (never moving a time backwards). Returns how many
/// keys were written.
pub async fn flush_last_used(velu: &Velu) -> CoreResult<usize> {
    let last_used = velu.auth().last_used();
    let batch = last_used.take();
    if batch.is_empty() {
        return Ok(0);
    }
    if let Err(e) = write(velu, &batch).await {
        // Keep them for the next flush.
        for (kid, at) in batch {
            last_used.touch(&kid, at);
        }
        return Err(e);
    }
    Ok(batch.len())
}

async fn write(velu: &Velu, batch: &HashMap<String, DateTime<Utc>>) -> CoreResult<()> {
    let tx = velu
        .db()
        .cross_org_tx(crate::db::CrossOrg::LastUsedFlush)
        .await?;
    for (kid, at) in batch {
        api_keys::Entity::update_many()
            .col_expr(api_keys::Column::LastUsedAt, Expr::value(*at))
            .filter(api_keys::Column::Kid.eq(kid.as_str()))
            .filter(
                Condition::any()
                    .add(api_keys::Column::LastUsedAt.is_null())
                    .add(api_keys::Column::LastUsedAt.lt(*at)),
            )
            .exec(&tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
