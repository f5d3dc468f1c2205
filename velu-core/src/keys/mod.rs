//! API keys: the format, hashing, the pepper, and the key operations.

pub mod hashing;
pub mod pepper;
mod service;
pub mod token;

pub use service::*;
