//! Usage: what each org used, per UTC day and task kind, the figures a billing system
//! invoices from (docs/usage.md). Kept as rollups in `usage_daily`, updated as things
//! happen, never computed by scanning job history:
//!
//! * `delta.rs`: [`Delta`], the increments of one row, merged per key; submits and batches
//!   add theirs in their own transaction (`record_submitted`), the end of a job in the
//!   finish statement (`queue/finish.rs`); the upsert itself is `db/usage.rs`.
//! * `api_requests.rs`: API requests, counted in memory per org and day by the HTTP layer
//!   and flushed in the background and at shutdown ([`flush_api_requests`]).
//! * `range.rs`: the days a report covers (`YYYY-MM-DD`, at most [`MAX_DAYS`]).
//! * `documents.rs`, `read.rs`: the report and the operation [`usage`].

mod api_requests;
mod delta;
mod documents;
mod range;
mod read;

pub use api_requests::{ApiRequests, MAX_PENDING, flush_api_requests};
pub use delta::{Delta, ORG_WIDE, day_of, merge};
pub(crate) use delta::{record_submitted, record_submitted_many};
pub use documents::{UsageQuery, UsageReport, UsageRow, UsageTotals};
pub use range::{DayRange, MAX_DAYS};
pub use read::{MAX_ROWS, usage};
