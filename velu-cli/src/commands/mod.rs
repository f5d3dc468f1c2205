//! One module per noun; each command calls one velu-core operation and returns the
//! rendered document.

pub mod audit;
pub mod completions;
pub mod docs;
pub mod job;
pub mod key;
pub mod migrate;
pub mod org;
pub mod plan;
pub mod serve;
pub mod task;
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

/// Splits `a,b c` into names.
pub fn split_list(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
