//! `GET /health` and `GET /ready`.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;

use velu_core::Velu;

use crate::ready::ReadyCache;

use super::Tag;

/// Liveness and readiness.
pub struct HealthApi;

/// State of the process or its database.
#[derive(Debug, Object)]
pub struct Health {
    /// `ok`, or what is wrong.
    pub status: String,
}

/// Readiness answer.
#[derive(ApiResponse)]
pub enum Ready {
    /// The database is reachable and its schema current.
    #[oai(status = 200)]
    Ready(Json<Health>),
    /// The database is unreachable or its schema is behind.
    #[oai(status = 503)]
    NotReady(Json<Health>),
}

#[OpenApi(tag = "Tag::Health")]
impl HealthApi {
    /// The process is alive.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
        })
    }

    /// The database is reachable and its schema current (503 otherwise). On a 503 the
    /// `status` is the error's code, `unavailable` or `schema_mismatch`; the cause, which
    /// may name the database's user or the pending migrations, is in the server's log.
    /// One check runs at a time and its answer serves every caller for a second.
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, velu: Data<&Velu>, cache: Data<&Arc<ReadyCache>>) -> Ready {
        let check = async {
            let checked = async {
                velu.db().ping().await?;
                velu.db().require_current_schema().await
            };
            checked.await.map_err(|e| {
                tracing::warn!(error = %e, "not ready");
                e.code()
            })
        };
        match cache.get(check).await {
            Ok(()) => Ready::Ready(Json(Health {
                status: "ok".into(),
            })),
            Err(code) => Ready::NotReady(Json(Health {
                status: code.into(),
            })),
        }
    }
}
