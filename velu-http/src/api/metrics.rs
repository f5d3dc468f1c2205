//! `GET /metrics`: this process's Prometheus metrics, for a platform key.

use poem::web::Data;
use poem_openapi::payload::PlainText;
use poem_openapi::{ApiResponse, OpenApi};
use velu_core::{Velu, metrics};

use super::Tag;
use crate::auth::Auth;
use crate::problem::ApiResult;

/// The metrics endpoint.
pub struct MetricsApi;

/// The exposition.
#[derive(ApiResponse)]
pub enum Exposition {
    /// The metrics in OpenMetrics text (see docs/metrics.md).
    #[oai(
        status = 200,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )]
    Ok(PlainText<String>),
}

#[OpenApi(tag = "Tag::Metrics")]
impl MetricsApi {
    /// This process's metrics in OpenMetrics text: requests, authentication failures,
    /// queue depth, workers. Scope: `admin:orgs:manage` (platform keys only; an org key of
    /// any role is refused `forbidden`). For a scraper without a key, serve them on a
    /// private address with `--metrics-addr`.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, velu: Data<&Velu>, auth: Auth) -> ApiResult<Exposition> {
        let text = metrics::scrape(&velu, &auth.0).await?;
        Ok(Exposition::Ok(PlainText(text)))
    }
}
