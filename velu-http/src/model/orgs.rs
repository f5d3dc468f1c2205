//! Organizations.

use poem_openapi::Object;
use velu_core::orgs;

use super::common::{Text, ts};
use super::mirror::mirror;
use super::plans::PlanName;

mirror! {
    /// An organization.
    pub struct Org from orgs::Org {
        /// UUIDv7.
        pub id: String,
        /// Display name.
        pub name: String,
        /// Unique handle.
        pub slug: String,
        /// Plan tier.
        pub plan: PlanName,
        /// RFC 3339 UTC.
        pub created_at: String = |t| ts(t),
        /// RFC 3339 UTC.
        pub updated_at: String = |t| ts(t),
    }
}

/// Body of `POST /v1/orgs`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateOrg {
    /// Display name: at most 200 characters, no control characters, not blank (trimmed).
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    pub name: Text,
    /// Lower-case letters, digits and hyphens, 2 to 63 long, not starting with a hyphen;
    /// refused, never rewritten. Route words (`bootstrap`, `new`, `batch`, ...) are
    /// reserved.
    #[oai(validator(pattern = r"^[a-z0-9][a-z0-9-]{1,62}$"))]
    pub slug: Text,
    /// Plan [default: base].
    #[oai(nullable)]
    pub plan: Option<PlanName>,
}

impl From<CreateOrg> for orgs::CreateOrg {
    fn from(b: CreateOrg) -> Self {
        orgs::CreateOrg {
            name: b.name.0,
            slug: b.slug.0,
            plan: b.plan.map(|p| p.as_str().to_owned()),
        }
    }
}

/// Body of `PUT /v1/orgs/{org}/plan`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct SetPlan {
    /// The new plan.
    pub plan: PlanName,
}
