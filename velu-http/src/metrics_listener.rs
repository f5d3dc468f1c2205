//! The private metrics listener (`--metrics-addr` of `serve` and `worker`): `GET /metrics`
//! and nothing else, without a key, on an address of its own.
//!
//! Anyone who reaches the address reads the metrics (queue depth by plan, request counts
//! by route; no org, key or job is ever named in them), so it is meant for a private
//! network or loopback, where Prometheus scrapes without holding a platform key. The scrape
//! runs as the operator, like the CLI: the network is the trust boundary, as the database
//! credential is for the CLI.

use std::net::SocketAddr;
use std::sync::Arc;

use poem::endpoint::make;
use poem::http::header;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Endpoint, Response, Route, Server, get};
use velu_core::metrics::{self, Metrics};
use velu_core::{CoreError, CoreResult, Principal, Velu};

use crate::problem::ApiError;

/// A metrics listener serving in the background; stops when dropped.
#[derive(Debug)]
pub struct MetricsListener {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsListener {
    /// The address it listens on (the port chosen, for `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr` and serves [`metrics_app`] there until the returned listener is dropped.
/// A bad or busy address is a `config` error, at startup.
pub async fn listen_metrics(velu: Velu, addr: &str) -> CoreResult<MetricsListener> {
    listen(Source::Velu(velu), addr).await
}

/// Like [`listen_metrics`] for a process without a database (a remote worker): only the
/// process's worker families (`velu_worker_*`), no queue depth or fleet.
pub async fn listen_worker_metrics(addr: &str) -> CoreResult<MetricsListener> {
    listen(Source::Process(Arc::new(Metrics::new())), addr).await
}

/// What a listener renders.
#[derive(Clone)]
enum Source {
    /// A process with a database: everything, as the operator.
    Velu(Velu),
    /// A process without one: its own families only.
    Process(Arc<Metrics>),
}

async fn listen(source: Source, addr: &str) -> CoreResult<MetricsListener> {
    let fail =
        |e: std::io::Error| CoreError::Config(format!("cannot serve metrics on {addr}: {e}"));
    let acceptor = TcpListener::bind(addr.to_owned())
        .into_acceptor()
        .await
        .map_err(fail)?;
    let bound = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .ok_or_else(|| CoreError::Config(format!("cannot serve metrics on {addr}: no address")))?;
    tracing::info!(addr = %bound, "serving metrics at /metrics (no key: keep this address private)");
    let app = source_app(source);
    let task = tokio::spawn(async move {
        if let Err(e) = Server::new_with_acceptor(acceptor).run(app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(MetricsListener { addr: bound, task })
}

/// The app of the private listener: `GET /metrics` (scraped as the operator), nothing else.
pub fn metrics_app(velu: Velu) -> impl Endpoint {
    source_app(Source::Velu(velu))
}

fn source_app(source: Source) -> impl Endpoint {
    let operator = Principal::operator();
    Route::new().at(
        "/metrics",
        get(make(move |_| {
            let (source, operator) = (source.clone(), operator.clone());
            async move {
                let text = match &source {
                    Source::Velu(velu) => {
                        metrics::scrape(velu, &operator).await.map_err(ApiError)?
                    }
                    Source::Process(m) => m.encode(),
                };
                Ok::<_, poem::Error>(
                    Response::builder()
                        .header(header::CONTENT_TYPE, metrics::CONTENT_TYPE)
                        .header(header::CACHE_CONTROL, "no-store")
                        .body(text),
                )
            }
        })),
    )
}
