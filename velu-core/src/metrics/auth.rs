//! Authentication failures and rate-limit refusals.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::CoreError;

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// An operation that needs a key was called without one.
    Missing,
    /// A key was presented and refused (malformed, unknown, wrong, revoked or expired).
    Invalid,
}

/// Which budget refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimit {
    /// A client address (or key id) spent its budget of failed authentications.
    AuthFailures,
    /// An org spent its plan's requests per minute.
    OrgRequests,
}

impl AuthFailure {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Invalid => "invalid",
        }
    }
}

impl RateLimit {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimit::AuthFailures => "auth_failures",
            RateLimit::OrgRequests => "org_requests",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FailureLabels {
    reason: AuthFailure,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitLabels {
    limit: RateLimit,
}

/// The authentication families.
pub struct AuthMetrics {
    failures: Family<FailureLabels, Counter>,
    limited: Family<LimitLabels, Counter>,
}

impl AuthMetrics {
    pub(super) fn register(registry: &mut Registry) -> AuthMetrics {
        let failures = Family::<FailureLabels, Counter>::default();
        let limited = Family::<LimitLabels, Counter>::default();
        // Every series exists from the start, so a rate of zero is a series, not a gap.
        for reason in [AuthFailure::Missing, AuthFailure::Invalid] {
            drop(failures.get_or_create(&FailureLabels { reason }));
        }
        for limit in [RateLimit::AuthFailures, RateLimit::OrgRequests] {
            drop(limited.get_or_create(&LimitLabels { limit }));
        }
        registry.register(
            "auth_failures",
            "Requests refused as unauthorized (401), by reason",
            failures.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused as rate limited (429), by the budget that refused them",
            limited.clone(),
        );
        AuthMetrics { failures, limited }
    }

    /// Counts one authentication failure.
    pub fn failure(&self, reason: AuthFailure) {
        self.failures.get_or_create(&FailureLabels { reason }).inc();
    }

    /// Counts one rate-limit refusal.
    pub fn limited(&self, limit: RateLimit) {
        self.limited.get_or_create(&LimitLabels { limit }).inc();
    }

    /// Counts what authenticating a presented key ended in: `unauthorized` is an invalid
    /// key, `rate_limited` the failure budget; other errors (an outage) are neither.
    pub(crate) fn key_refused(&self, err: &CoreError) {
        match err {
            CoreError::Unauthorized => self.failure(AuthFailure::Invalid),
            CoreError::RateLimited { .. } => self.limited(RateLimit::AuthFailures),
            _ => {}
        }
    }

    /// The count of failures for `reason` (tests and diagnostics).
    pub fn failures(&self, reason: AuthFailure) -> u64 {
        self.failures.get_or_create(&FailureLabels { reason }).get()
    }

    /// The count of refusals by `limit` (tests and diagnostics).
    pub fn refusals(&self, limit: RateLimit) -> u64 {
        self.limited.get_or_create(&LimitLabels { limit }).get()
    }
}
