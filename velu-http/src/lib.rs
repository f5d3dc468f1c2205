//! velu-http: Velu's REST facade. Thin by rule: every operation extracts its inputs,
//! calls the velu-core function of the same name, converts the result and responds.
//! No SQL and no business rule lives here; only HTTP (statuses, headers, problem bodies).
//!
//! Also the one way to serve: [`serve`] with [`ServeOptions`], called by `velu-cli serve`
//! and by the `velu-http` binary, which parse the same flags ([`ServeOptions`],
//! [`flags::ConfigArgs`]).

pub mod access;
pub mod api;
pub mod auth;
pub mod body_limit;
pub mod compression;
pub mod core_json;
mod docs_csp;
mod docs_page;
pub mod flags;
pub mod headers;
pub mod logs;
mod metrics_listener;
pub mod model;
pub mod problem;
mod ready;
mod serve;

pub use metrics_listener::{MetricsListener, listen_metrics, listen_worker_metrics, metrics_app};
pub use serve::{DEFAULT_ADDR, ServeOptions, serve};

use std::sync::{Arc, LazyLock};

use poem::endpoint::make_sync;
use poem::web::Redirect;
use poem::{Endpoint, EndpointExt, IntoResponse, Route, get};
use velu_core::Velu;

use crate::compression::Precompressed;

/// `/` (the API service is nested at the root, which shadows a plain route there).
fn is_root(req: &poem::Request) -> bool {
    req.uri().path() == "/" && req.method() == poem::http::Method::GET
}

/// The static documents (the spec as JSON and YAML, the docs page and its CSP), each
/// gzipped once, and the methods of every route: built once per process.
struct Static {
    json: String,
    json_doc: Precompressed,
    yaml_doc: Precompressed,
    docs: Precompressed,
    docs_csp: String,
    routes: Arc<headers::Routes>,
}

static STATIC: LazyLock<Static> = LazyLock::new(|| {
    let json = api::finished_spec() + "\n";
    let value: serde_yaml::Value = serde_yaml::from_str(&json).expect("the spec is JSON");
    let yaml = serde_yaml::to_string(&value).expect("the spec serializes as YAML");
    let routes = headers::Routes::from_spec(
        &json,
        &[
            ("/openapi.json", "get"),
            ("/openapi.yaml", "get"),
            ("/docs", "get"),
        ],
    );
    let page = docs_page::html(&json);
    Static {
        docs_csp: docs_csp::for_html(&page),
        docs: Precompressed::new("text/html; charset=utf-8", page),
        json_doc: Precompressed::new("application/json", json.clone()),
        yaml_doc: Precompressed::new("application/x-yaml", yaml),
        json,
        routes: Arc::new(routes),
    }
});

/// The whole HTTP application for `velu`: API, spec, docs, middleware.
pub fn app(velu: Velu) -> impl Endpoint {
    let svc = api::service();
    let docs_csp = STATIC.docs_csp.clone();
    let routes = STATIC.routes.clone();
    let metrics = velu.metrics().clone();
    let fixed = |doc: &'static Precompressed| {
        get(make_sync(move |req: poem::Request| {
            doc.respond(req.headers())
        }))
    };
    Route::new()
        .at("/openapi.json", fixed(&STATIC.json_doc))
        .at("/openapi.yaml", fixed(&STATIC.yaml_doc))
        .at("/docs", fixed(&STATIC.docs))
        .at("/docs/", fixed(&STATIC.docs))
        .nest("/", svc)
        .data(velu)
        .data(Arc::new(ready::ReadyCache::default()))
        .around(|ep, req| async move {
            if is_root(&req) {
                return Ok(Redirect::see_other("/docs").into_response());
            }
            ep.call(req).await.map(IntoResponse::into_response)
        })
        .around(compression::around)
        .around(move |ep, req| {
            let csp = docs_csp.clone();
            let routes = routes.clone();
            let metrics = metrics.clone();
            async move { headers::around(ep, req, &csp, &routes, &metrics).await }
        })
}

/// The OpenAPI spec as JSON (what `/openapi.json` serves and `docs/openapi.json` holds,
/// without the final newline).
pub fn openapi_json() -> String {
    STATIC.json.trim_end().to_owned()
}
