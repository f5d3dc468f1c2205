//! Bootstrap: an org with its three keys in one step.

use poem_openapi::Object;
use velu_core::bootstrap;

use super::common::Text;
use super::keys::IssuedKey;
use super::mirror::mirror;
use super::orgs::Org;
use super::plans::PlanName;

/// Body of `POST /v1/orgs/bootstrap`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct BootstrapOrg {
    /// Display name: at most 200 characters, no control characters, not blank (trimmed).
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    pub name: Text,
    /// Unique slug, as for `POST /v1/orgs`.
    #[oai(validator(pattern = r"^[a-z0-9][a-z0-9-]{1,62}$"))]
    pub slug: Text,
    /// Plan [default: base].
    #[oai(nullable)]
    pub plan: Option<PlanName>,
    /// Re-issue the three keys if the org exists [default: false].
    #[oai(nullable, default)]
    pub rotate: bool,
}

impl From<BootstrapOrg> for bootstrap::BootstrapOrg {
    fn from(b: BootstrapOrg) -> Self {
        bootstrap::BootstrapOrg {
            name: b.name.0,
            slug: b.slug.0,
            plan: b.plan.map(|p| p.as_str().to_owned()),
            rotate: b.rotate,
        }
    }
}

mirror! {
    /// The viewer, builder and admin keys, each with its secret (shown once).
    pub struct BootstrapKeys from bootstrap::BootstrapKeys {
        /// `jobs:read`.
        pub viewer: IssuedKey,
        /// Viewer plus `jobs:submit`.
        pub builder: IssuedKey,
        /// Builder plus `admin:api_keys:manage`, `audit:read`, `admin:queue:manage`,
        /// `admin:secrets:manage`, `usage:read`.
        pub admin: IssuedKey,
    }
}

mirror! {
    /// The result of a bootstrap.
    pub struct Bootstrap from bootstrap::Bootstrap {
        /// The org.
        pub org: Org,
        /// Its keys.
        pub keys: BootstrapKeys,
        /// True when the org existed and its keys were re-issued.
        pub rotated: bool,
    }
}
