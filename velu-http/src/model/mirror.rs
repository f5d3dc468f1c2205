//! [`mirror!`]: a wire document that mirrors a velu-core output struct, declared from one
//! field list.
//!
//! velu-core cannot derive poem's traits (it does not depend on poem), so every output
//! struct has a twin here. The macro writes both halves of the twin from one list: the
//! `#[derive(Debug, poem_openapi::Object)]` struct, with every attribute passed through
//! (doc comments become the spec's descriptions; `#[oai(...)]` renames, nullability,
//! flattening), and `From<core struct>`, moving each field across. Adding a field is one
//! edit (plus velu-core's); a field the core struct lacks does not compile.
//!
//! A field converts with [`Into::into`] (same type, an enum or a nested mirror) unless it
//! names its own conversion: `pub field: Type = |value| expression,`.
//!
//! ```ignore
//! mirror! {
//!     /// An organization.
//!     pub struct Org from velu_core::orgs::Org {
//!         /// Display name.
//!         pub name: String,
//!         /// RFC 3339 UTC.
//!         pub created_at: String = |t| ts(t),
//!     }
//! }
//! ```

/// Declares a wire struct and its `From` the velu-core struct it mirrors (see the module).
macro_rules! mirror {
    (@field $value:expr) => {
        ::core::convert::Into::into($value)
    };
    (@field $value:expr, |$v:ident| $conv:expr) => {{
        let $v = $value;
        $conv
    }};
    (
        $(#[$meta:meta])*
        pub struct $name:ident from $core:ty {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident : $ty:ty $(= |$v:ident| $conv:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, poem_openapi::Object)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
        }

        impl $crate::model::Mirrors<$core> for $name {}

        impl From<$core> for $name {
            fn from(core: $core) -> Self {
                $name {
                    $(
                        $field: $crate::model::mirror::mirror!(
                            @field core.$field $(, |$v| $conv)?
                        ),
                    )*
                }
            }
        }
    };
}

pub(crate) use mirror;

/// `Self` is the wire twin of velu-core's document `C`: the same fields under the same
/// names, so `C`'s serde JSON is what the spec describes as `Self` (written by
/// [`mirror!`] for each pair; used by [`crate::core_json::CoreJson`], and checked by
/// `tests/it/core_json.rs`).
pub trait Mirrors<C> {}

/// Converts every item of a list (a list field's usual conversion: `= |v| each(v)`).
pub fn each<T, U: Into<T>>(items: Vec<U>) -> Vec<T> {
    items.into_iter().map(Into::into).collect()
}
