//! Label values of Velu's closed sets, spelled as everywhere else (`as_str`).

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

use super::auth::{AuthFailure, RateLimit};
use super::http::HttpMethod;
use crate::fleet::{WorkerLocation, WorkerState};
use crate::jobs::{AttemptOutcome, JobStatus};
use crate::plans::Plan;

/// The label value standing for anything outside a bounded set (an unknown task kind).
pub const OTHER: &str = "other";

macro_rules! as_str_label {
    ($($t:ty),*) => {$(
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                EncodeLabelValue::encode(&self.as_str(), encoder)
            }
        }
    )*};
}

as_str_label!(
    JobStatus,
    AttemptOutcome,
    Plan,
    HttpMethod,
    AuthFailure,
    RateLimit,
    WorkerState,
    WorkerLocation
);
