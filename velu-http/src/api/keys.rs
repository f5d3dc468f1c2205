//! An org's API keys (`admin:api_keys:manage`).

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use velu_core::Velu;
use velu_core::keys::{self, KeyOwner};
use velu_core::orgs::OrgRef;
use velu_core::pagination::PageRequest;

use super::{Created, Tag};
use crate::auth::Auth;
use crate::model::Page;
use crate::model::common::Cursor;
use crate::model::keys::{ApiKey, CreateKey, IssuedKey};
use crate::problem::{ApiResult, BodyResult};

/// API keys.
pub struct KeysApi;

fn owner(org: Path<String>) -> KeyOwner {
    KeyOwner::Org(OrgRef::new(org.0))
}

#[OpenApi(tag = "Tag::Keys")]
impl KeysApi {
    /// Create a key; its secret (`token`) is shown once. A key never grants a scope its
    /// creator lacks, nor outlives it (a caller key with an expiry needs `expires_at` at
    /// or before its own). Scope: `admin:api_keys:manage`.
    #[oai(
        path = "/v1/orgs/:org/keys",
        method = "post",
        operation_id = "keys.create"
    )]
    async fn create(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        body: Json<CreateKey>,
    ) -> BodyResult<Created<IssuedKey>> {
        let key = keys::create_key(&velu, &auth.0, &owner(org), &body.0.into()).await?;
        Ok(Created::Created(Json(key.into())))
    }

    /// List the org's keys, oldest first (never their secrets). Scope:
    /// `admin:api_keys:manage`.
    #[oai(
        path = "/v1/orgs/:org/keys",
        method = "get",
        operation_id = "keys.list"
    )]
    async fn list(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        /// Page size [default: 50].
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page (opaque; empty means the first page).
        #[oai(validator(custom = "crate::model::common::CursorPattern"))]
        cursor: Query<Option<Cursor>>,
    ) -> ApiResult<Json<Page<ApiKey>>> {
        let page = PageRequest {
            limit: limit.0,
            cursor: cursor.0.map(String::from),
        };
        Ok(Json(
            keys::list_keys(&velu, &auth.0, &owner(org), &page)
                .await?
                .into(),
        ))
    }

    /// Show a key. Scope: `admin:api_keys:manage`.
    #[oai(
        path = "/v1/orgs/:org/keys/:key",
        method = "get",
        operation_id = "keys.show"
    )]
    async fn show(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        key: Path<String>,
    ) -> ApiResult<Json<ApiKey>> {
        Ok(Json(
            keys::show_key(&velu, &auth.0, &owner(org), &key)
                .await?
                .into(),
        ))
    }

    /// Revoke a key (idempotent). Refused at once, on every node within seconds. Scope:
    /// `admin:api_keys:manage`.
    #[oai(
        path = "/v1/orgs/:org/keys/:key/revoke",
        method = "post",
        operation_id = "keys.revoke"
    )]
    async fn revoke(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        key: Path<String>,
    ) -> ApiResult<Json<ApiKey>> {
        Ok(Json(
            keys::revoke_key(&velu, &auth.0, &owner(org), &key)
                .await?
                .into(),
        ))
    }

    /// Give a key a new secret, same id; with `grace_secs` the old one keeps working
    /// that long. A caller key with an expiry cannot rotate a key that outlives it; two
    /// rotations at once: one is a `conflict`. Scope: `admin:api_keys:manage`.
    #[oai(
        path = "/v1/orgs/:org/keys/:key/rotate",
        method = "post",
        operation_id = "keys.rotate"
    )]
    async fn rotate(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        key: Path<String>,
        /// Seconds the old secret keeps working (at most 7 days) [default: 0, none].
        #[oai(validator(minimum(value = "0"), maximum(value = "604800")))]
        grace_secs: Query<Option<u64>>,
    ) -> ApiResult<Json<IssuedKey>> {
        let input = keys::RotateKey {
            grace_secs: grace_secs.0,
        };
        Ok(Json(
            keys::rotate_key(&velu, &auth.0, &owner(org), &key, &input)
                .await?
                .into(),
        ))
    }
}
