//! Org secrets: the documents (names, versions, dates; never a value) and the bodies that
//! carry a value in (`secrets.set`) or out to a worker holding a lease (`worker.secrets`).

use poem_openapi::Object;
use velu_core::secrets;
use velu_core::worker::protocol as core;

use super::common::{PlainText, Text, ts};
use super::mirror::{each, mirror};

mirror! {
    /// A secret: its name, version and dates. Its value is never returned.
    pub struct Secret from secrets::Secret {
        /// The name, the environment variable jobs receive it as.
        pub name: String,
        /// 1 at the first set, one more at each set after.
        pub version: i64,
        /// RFC 3339 UTC.
        pub created_at: String = |t| ts(t),
        /// RFC 3339 UTC.
        pub updated_at: String = |t| ts(t),
    }
}

mirror! {
    /// An org's secrets, by name.
    pub struct SecretList from secrets::SecretList {
        /// Every secret of the org (at most 500), sorted by name.
        pub items: Vec<Secret> = |v| each(v),
    }
}

/// Body of `PUT /v1/orgs/{org}/secrets/{name}`. `Debug` never shows the value.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct SetSecret {
    /// The value: 1 to 65536 bytes of UTF-8 text without U+0000 (more bytes:
    /// `payload_too_large`). Stored sealed; never returned, logged or audited.
    #[oai(validator(min_length = 1, max_length = 65536))]
    pub value: Text,
}

impl std::fmt::Debug for SetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetSecret { value: <redacted> }")
    }
}

/// Body of `POST /v1/worker/secrets`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct JobSecretsRequest {
    /// The worker holding the lease: 1 to 200 bytes, no control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        custom = "crate::model::common::NoControl"
    ))]
    pub worker_id: PlainText,
    /// The job (a UUID).
    #[oai(validator(min_length = 1, max_length = 64))]
    pub job_id: Text,
    /// The lease token of its current attempt: 1 to 128 bytes, no control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        custom = "crate::model::common::NoControl"
    ))]
    pub token: PlainText,
}

impl From<JobSecretsRequest> for core::SecretsInput {
    fn from(b: JobSecretsRequest) -> Self {
        core::SecretsInput {
            worker_id: b.worker_id.0,
            job_id: b.job_id.0,
            token: b.token.0,
        }
    }
}

/// One secret delivered to a job. `Debug` shows the name only.
#[derive(Object)]
pub struct JobSecret {
    /// The name, the environment variable the job gets.
    pub name: String,
    /// The value.
    pub value: String,
}

impl std::fmt::Debug for JobSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobSecret({}, <redacted>)", self.name)
    }
}

/// Answer of `POST /v1/worker/secrets`.
#[derive(Debug, Object)]
pub struct JobSecrets {
    /// The secrets the job's task kind lists, in its order (empty when it lists none).
    pub secrets: Vec<JobSecret>,
}

impl From<core::JobSecrets> for JobSecrets {
    fn from(j: core::JobSecrets) -> Self {
        JobSecrets {
            secrets: j
                .secrets
                .into_iter()
                .map(|s| JobSecret {
                    name: s.name,
                    value: s.value,
                })
                .collect(),
        }
    }
}
