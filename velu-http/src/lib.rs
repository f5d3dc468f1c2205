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
mod docs_csp;
pub mod flags;
pub mod headers;
pub mod logs;
pub mod model;
pub mod problem;
mod serve;

pub use serve::{DEFAULT_ADDR, ServeOptions, serve};

use std::sync::{Arc, LazyLock};

use poem::endpoint::make_sync;
use poem::web::Redirect;
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get};
use velu_core::Velu;

/// `/` (the API service is nested at the root, which shadows a plain route there).
fn is_root(req: &poem::Request) -> bool {
    req.uri().path() == "/" && req.method() == poem::http::Method::GET
}

/// The spec (JSON, YAML) and the methods of every route, built once per process.
struct Static {
    json: String,
    yaml: String,
    routes: Arc<headers::Routes>,
}

static STATIC: LazyLock<Static> = LazyLock::new(|| {
    let json = api::finished_spec() + "\n";
    let value: serde_yaml::Value = serde_yaml::from_str(&json).expect("the spec is JSON");
    let routes = headers::Routes::from_spec(
        &json,
        &[
            ("/openapi.json", "get"),
            ("/openapi.yaml", "get"),
            ("/docs", "get"),
        ],
    );
    Static {
        yaml: serde_yaml::to_string(&value).expect("the spec serializes as YAML"),
        json,
        routes: Arc::new(routes),
    }
});

/// The whole HTTP application for `velu`: API, spec, docs, middleware.
pub fn app(velu: Velu) -> impl Endpoint {
    let svc = api::service();
    let docs_csp = docs_csp::for_html(&svc.swagger_ui_html());
    let routes = STATIC.routes.clone();
    let spec = |body: &'static str, content_type: &'static str| {
        get(make_sync(move |_| {
            Response::builder().content_type(content_type).body(body)
        }))
    };
    Route::new()
        .at("/openapi.json", spec(&STATIC.json, "application/json"))
        .at("/openapi.yaml", spec(&STATIC.yaml, "application/x-yaml"))
        .nest("/docs", svc.swagger_ui())
        .nest("/", svc)
        .data(velu)
        .around(|ep, req| async move {
            if is_root(&req) {
                return Ok(Redirect::see_other("/docs").into_response());
            }
            ep.call(req).await.map(IntoResponse::into_response)
        })
        .around(move |ep, req| {
            let csp = docs_csp.clone();
            let routes = routes.clone();
            async move { headers::around(ep, req, &csp, &routes).await }
        })
}

/// The OpenAPI spec as JSON (what `/openapi.json` serves and `docs/openapi.json` holds,
/// without the final newline).
pub fn openapi_json() -> String {
    STATIC.json.trim_end().to_owned()
}
