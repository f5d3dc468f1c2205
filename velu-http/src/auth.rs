//! The `Auth` extractor: an operation that takes it requires an API key.
//!
//! The key comes from `X-API-Key` or `Authorization: Bearer`; both are declared in the
//! spec as alternatives. Verification, failure budgets and the org's request budget live
//! in velu-core (which also counts refusals in the metrics; a missing key is counted
//! here); this file only moves headers in and problems out. The org's budget is
//! left in a request slot so [`crate::headers`] can add `RateLimit-*` to the response.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::header;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use velu_core::auth::{RateStatus, authenticate, check_rate};
use velu_core::metrics::AuthFailure;
use velu_core::{CoreError, Principal, Velu};

use crate::access::{Caller, CallerSlot};
use crate::problem::ApiError;

/// Name of the `X-API-Key` scheme in the spec.
pub const API_KEY_SCHEME: &str = "ApiKey";
/// Name of the bearer scheme in the spec.
pub const BEARER_SCHEME: &str = "Bearer";

/// The authenticated caller of an operation.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

/// Where the auth step leaves the org's rate-limit status for the response headers.
#[derive(Clone, Default)]
pub struct RateSlot(pub Arc<Mutex<Option<RateStatus>>>);

/// The key text of a request: `X-API-Key`, else `Authorization: Bearer`.
pub fn presented_key(req: &Request) -> Option<&str> {
    if let Some(v) = req.headers().get("x-api-key") {
        return v.to_str().ok();
    }
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn client_ip(req: &Request) -> Option<IpAddr> {
    req.remote_addr().as_socket_addr().map(|a| a.ip())
}

/// Most answers held back by the tarpit at once; past it, refusals are answered at once
/// (so the tarpit itself cannot be made to hold unbounded connections).
const TARPIT_MAX: usize = 1024;
/// Longest a refusal is held back.
const TARPIT_DELAY: Duration = Duration::from_secs(1);
static TARPITTED: AtomicUsize = AtomicUsize::new(0);

/// Holds back the answer to a client whose authentication failure budget is spent, for
/// up to a second (never past its `Retry-After`). A flooding connection then sends about
/// one request a second instead of thousands, and each costs a sleeping task instead of
/// CPU that real requests need: with 500 flooding connections on two cores, the real
/// keys' latency is what the tarpit protects (docs/reliability.md).
async fn tarpit(e: &CoreError) {
    let CoreError::RateLimited { retry_after } = e else {
        return;
    };
    if TARPITTED.fetch_add(1, Ordering::AcqRel) < TARPIT_MAX {
        tokio::time::sleep((*retry_after).min(TARPIT_DELAY)).await;
    }
    TARPITTED.fetch_sub(1, Ordering::AcqRel);
}

/// Verifies the key the request carries and counts it against the org's budget.
async fn verify(req: &Request, text: &str) -> poem::Result<Principal> {
    let velu = req
        .data::<Velu>()
        .ok_or_else(|| ApiError(CoreError::internal("Velu handle missing from request data")))?;
    let principal = match authenticate(velu, text, client_ip(req)).await {
        Ok(p) => p,
        Err(e) => {
            tarpit(&e).await;
            return Err(ApiError(e).into());
        }
    };
    if let Some(slot) = req.extensions().get::<CallerSlot>() {
        slot.set(Caller::of(&principal));
    }
    let status = check_rate(velu, &principal).map_err(ApiError)?;
    // Usage: an org's authenticated, admitted requests (counted in memory, flushed in the
    // background; docs/usage.md). Platform keys belong to no org and are not counted.
    if let Some(org_id) = &principal.org_id {
        velu.api_requests().count(org_id);
    }
    if let (Some(slot), Some(status)) = (req.extensions().get::<RateSlot>(), status) {
        *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
    }
    Ok(principal)
}

fn register_schemes(registry: &mut Registry) {
    registry.create_security_scheme(
        API_KEY_SCHEME,
        MetaSecurityScheme {
            ty: "apiKey",
            description: Some("An API key (`velu_k1_...`) in the `X-API-Key` header."),
            name: Some("X-API-Key"),
            key_in: Some("header"),
            scheme: None,
            bearer_format: None,
            flows: None,
            openid_connect_url: None,
        },
    );
    registry.create_security_scheme(
        BEARER_SCHEME,
        MetaSecurityScheme {
            ty: "http",
            description: Some("The same API key as `Authorization: Bearer <key>`."),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: Some("velu_k1"),
            flows: None,
            openid_connect_url: None,
        },
    );
}

/// A public operation's caller: anonymous, or a key that is then checked like anywhere
/// else (a presented key that is wrong is a 401, never silently ignored).
#[derive(Debug, Clone)]
pub struct MaybeAuth(pub Option<Principal>);

impl<'a> ApiExtractor<'a> for MaybeAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_schemes(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![API_KEY_SCHEME, BEARER_SCHEME]
    }

    fn has_security_fallback() -> bool {
        true
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match presented_key(req) {
            None => Ok(MaybeAuth(None)),
            Some(text) => Ok(MaybeAuth(Some(verify(req, text).await?))),
        }
    }
}

impl<'a> ApiExtractor<'a> for Auth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_schemes(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![API_KEY_SCHEME, BEARER_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let Some(text) = presented_key(req) else {
            if let Some(velu) = req.data::<Velu>() {
                velu.metrics().auth().failure(AuthFailure::Missing);
            }
            return Err(ApiError(CoreError::Unauthorized).into());
        };
        verify(req, text).await.map(Auth)
    }
}
