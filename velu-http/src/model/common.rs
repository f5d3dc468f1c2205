//! Shared wire pieces: pages and timestamps.

use poem_openapi::Object;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use velu_core::time::Timestamp;

/// One page of a list.
#[derive(Debug, Object)]
pub struct Page<T: ParseFromJSON + ToJSON> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ParseFromJSON + ToJSON> Page<T> {
    /// Converts a core page item by item.
    pub fn from_core<U>(page: velu_core::pagination::Page<U>) -> Self
    where
        T: From<U>,
    {
        Page {
            items: page.items.into_iter().map(T::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A timestamp as every document prints it (RFC 3339, UTC, `Z`).
pub fn ts(t: Timestamp) -> String {
    t.to_string()
}

/// An optional timestamp.
pub fn ts_opt(t: Option<Timestamp>) -> Option<String> {
    t.map(ts)
}
