//! One module per noun; each command calls one velu-core operation and returns the
//! rendered document.

pub mod audit;
pub mod billing;
pub mod completions;
pub mod context;
pub mod docs;
pub mod fleet;
pub mod job;
pub mod key;
pub mod migrate;
pub mod org;
pub mod plan;
pub mod queue;
pub mod retention;
pub mod schedule;
pub mod secret;
pub mod serve;
pub mod task;
pub mod usage;
pub mod wait;
pub mod watch;
pub mod whoami;
pub mod worker;

use clap::Args;
use velu_core::CoreResult;
use velu_core::pagination::{Page, PageRequest};

/// Pagination flags shared by every list command.
#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// Items per page (1..=200).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Continue after this cursor (the `next_cursor` of the previous page).
    #[arg(long, conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Fetch every page and print one merged document.
    #[arg(long)]
    pub all: bool,
}

impl PageArgs {
    fn request(&self, cursor: Option<String>) -> PageRequest {
        PageRequest {
            limit: Some(self.limit),
            cursor,
        }
    }

    /// `call` with this page's query (`limit`, `cursor`), following every page for `--all`.
    pub fn twin(&self, call: crate::twin::HttpCall) -> crate::twin::HttpCall {
        let mut call = call
            .query("limit", Some(self.limit.to_string()))
            .query("cursor", self.cursor.clone());
        call.all_pages = self.all;
        call
    }

    /// Runs a list operation for one page, or for every page with `--all`.
    pub async fn collect<T, F, Fut>(&self, mut fetch: F) -> CoreResult<Page<T>>
    where
        F: FnMut(PageRequest) -> Fut,
        Fut: Future<Output = CoreResult<Page<T>>>,
    {
        if !self.all {
            return fetch(self.request(self.cursor.clone())).await;
        }
        let mut items = Vec::new();
        let mut cursor = None;
        loop {
            let page = fetch(self.request(cursor)).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(Page {
            items,
            next_cursor: None,
        })
    }
}

/// The error of a command that has no HTTP twin, in remote mode or with `--print-http`.
pub fn local_only(command: &str, why: &str) -> velu_core::CoreError {
    velu_core::CoreError::invalid(
        "server",
        format!(
            "`velu-cli {command}` works only in local mode ({why}); \
             drop --server (and VELU_SERVER) and --print-http"
        ),
    )
}

/// Splits `a,b c` into names.
pub fn split_list(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
