//! `GET /v1/whoami`.

use poem::web::Data;
use poem_openapi::OpenApi;
use velu_core::{Velu, keys};

use super::Tag;
use crate::auth::Auth;
use crate::core_json::CoreJson;
use crate::model::keys::Whoami;
use crate::problem::ApiResult;

/// Who the caller is.
pub struct WhoamiApi;

#[OpenApi(tag = "Tag::Keys")]
impl WhoamiApi {
    /// The calling key: its org, plan and scopes. Any valid key.
    #[oai(path = "/v1/whoami", method = "get", operation_id = "whoami")]
    async fn whoami(&self, velu: Data<&Velu>, auth: Auth) -> ApiResult<CoreJson<Whoami>> {
        CoreJson::new(&keys::whoami(&velu, &auth.0).await?)
    }
}
