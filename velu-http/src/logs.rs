//! Logs of a Velu process: `tracing` to stderr, filtered by `VELU_LOG`, as text or, with
//! `VELU_LOG_FORMAT=json`, as JSON lines (one object per event: `timestamp`, `level`,
//! `target`, `message`, the event's fields, and `span`/`spans` with the fields of the
//! enclosing spans, such as a request's `request_id`).

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// The variable choosing the log format.
pub const FORMAT_ENV: &str = "VELU_LOG_FORMAT";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `text` or `json` (any case); `None` for anything else.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// A subscriber writing `format` to `writer`, filtered by `filter`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .finish(),
        ),
    }
}

/// Sends logs to stderr at `default` level (e.g. `info` for `serve` and `worker`) unless
/// `VELU_LOG` says otherwise, as text or as JSON lines (`VELU_LOG_FORMAT`). Does nothing
/// when a subscriber is already installed.
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_env("VELU_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let asked = std::env::var(FORMAT_ENV).unwrap_or_default();
    let format = LogFormat::parse(&asked);
    let installed = subscriber(
        format.unwrap_or(LogFormat::Text),
        filter,
        std::io::stderr().is_terminal(),
        std::io::stderr,
    )
    .try_init()
    .is_ok();
    if installed && format.is_none() {
        tracing::warn!(
            value = asked.as_str(),
            "{FORMAT_ENV} is neither `text` nor `json`; logging as text"
        );
    }
}
