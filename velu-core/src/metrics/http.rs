//! HTTP requests: a counter and a latency histogram by method, route template and status.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The route label of a request that matched no route (never its raw path, which a client
/// chooses freely).
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds of the request latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The method of a request, a closed set: anything else is `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
    /// Any other method a client sent.
    Other,
}

impl HttpMethod {
    /// The method named `text` (case-sensitive, as HTTP methods are), else `Other`.
    pub fn parse(text: &str) -> HttpMethod {
        match text {
            "GET" => HttpMethod::Get,
            "HEAD" => HttpMethod::Head,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "PATCH" => HttpMethod::Patch,
            "DELETE" => HttpMethod::Delete,
            "OPTIONS" => HttpMethod::Options,
            _ => HttpMethod::Other,
        }
    }

    /// The label value: the method's name, or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Other => super::OTHER,
        }
    }
}

/// The labels of one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: HttpMethod,
    route: String,
    status: u16,
}

/// The HTTP families.
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl HttpMetrics {
    pub(super) fn register(registry: &mut Registry) -> HttpMetrics {
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its response, by method, route template and status",
            Unit::Seconds,
            duration.clone(),
        );
        HttpMetrics { requests, duration }
    }

    /// Records one answered request. `route` is the template of the route it matched
    /// (`/v1/orgs/{org}/jobs`, one of a fixed set), `None` when it matched none (counted
    /// as [`UNMATCHED`]).
    pub fn observe(&self, method: &str, route: Option<&str>, status: u16, took: Duration) {
        let labels = RequestLabels {
            method: HttpMethod::parse(method),
            route: route.unwrap_or(UNMATCHED).to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_a_closed_set() {
        assert_eq!(HttpMethod::parse("GET"), HttpMethod::Get);
        assert_eq!(HttpMethod::parse("get"), HttpMethod::Other);
        assert_eq!(HttpMethod::parse("BREW"), HttpMethod::Other);
        assert_eq!(HttpMethod::parse("BREW").as_str(), "other");
    }

    #[test]
    fn odd_methods_and_unmatched_paths_share_one_series() {
        let mut registry = Registry::default();
        let m = HttpMetrics::register(&mut registry);
        for i in 0..100 {
            m.observe(&format!("X{i}"), None, 404, Duration::from_millis(1));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let series: Vec<_> = text
            .lines()
            .filter(|l| l.starts_with("http_requests_total"))
            .collect();
        assert_eq!(
            series,
            ["http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 100"]
        );
        let counts = text
            .lines()
            .filter(|l| l.starts_with("http_request_duration_seconds_count"))
            .count();
        assert_eq!(counts, 1);
    }
}
