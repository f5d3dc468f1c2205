//! Cursor pagination shared by every list operation.
//!
//! A list takes `limit` (1..=200, default 50) and an opaque `cursor`, and answers
//! `items` plus `next_cursor` (`null` on the last page). A cursor encodes the sort key of
//! the last item, the list it belongs to and a fingerprint of the filters it was made
//! with, so a cursor replayed against another list or other filters is refused as
//! `invalid` instead of silently skipping rows.
//!
//! Lists of rows that carry documents (jobs, schedules) also stop a page at
//! [`MAX_PAGE_BYTES`] of stored documents, so a page may hold fewer items than `limit`
//! and still have a `next_cursor`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{CoreError, CoreResult};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 200;
/// Most bytes of stored documents (a job's payload, result and error; a schedule's
/// payload) a page reads: a row is on the page when the rows before it hold fewer, so
/// a page always has its first row and ends after the row that reaches this. Without it
/// a page of 200 jobs with 1 MiB payloads would read, parse and send 200 MiB. As much as
/// one request body may carry.
pub const MAX_PAGE_BYTES: i64 = 2 * 1024 * 1024;

/// What a caller asks of a list: how many items and where to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Page size; `None` means [`DEFAULT_LIMIT`].
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Pass this as `cursor` to get the next page; `null` when there is none.
    pub next_cursor: Option<String>,
}

/// A validated page request: the limit and the decoded position to continue after.
#[derive(Debug, Clone)]
pub(crate) struct PageQuery {
    pub limit: u64,
    pub after: Option<Vec<String>>,
    list: &'static str,
    filters: String,
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    /// Which list.
    l: String,
    /// Filter fingerprint.
    f: String,
    /// Sort key of the last item returned.
    k: Vec<String>,
}

impl PageRequest {
    /// Validates the request for `list`, whose filters are described by `filters` (any
    /// stable text; only its hash is kept in the cursor).
    pub(crate) fn validate(&self, list: &'static str, filters: &str) -> CoreResult<PageQuery> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(CoreError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let filters = fingerprint(filters);
        let after = match &self.cursor {
            None => None,
            Some(c) if c.is_empty() => None,
            Some(c) => Some(decode(c, list, &filters)?),
        };
        Ok(PageQuery {
            limit: u64::from(limit),
            after,
            list,
            filters,
        })
    }
}

impl PageQuery {
    /// How many rows to fetch: one more than the page, to learn whether another follows.
    pub fn fetch(&self) -> u64 {
        self.limit + 1
    }

    /// Builds the page from up to `limit + 1` fetched rows; `key` gives a row's sort key.
    pub fn finish<R, T>(
        &self,
        mut rows: Vec<R>,
        key: impl Fn(&R) -> Vec<String>,
        map: impl FnMut(R) -> T,
    ) -> Page<T> {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(self.limit as usize);
        self.page(rows, more, key, map)
    }

    /// Builds the page from the `rows` a byte-bounded read kept (newest or oldest first,
    /// as the list sorts) out of the `seen` rows its scan saw (at most `limit + 1`, see
    /// [`MAX_PAGE_BYTES`]): another page follows when the scan saw more rows than the page
    /// holds, cut by the limit or by the bytes.
    pub fn finish_seen<R, T>(
        &self,
        rows: Vec<R>,
        seen: u64,
        key: impl Fn(&R) -> Vec<String>,
        map: impl FnMut(R) -> T,
    ) -> Page<T> {
        self.finish_scanned(rows, seen, None, key, map)
    }

    /// Like [`PageQuery::finish_seen`], for a read whose scan stopped before the end of the
    /// list at `floor`, the sort key of the last row it read (whether the row matched or
    /// not): then another page follows, continuing after `floor`, even when this page
    /// holds every row the scan found, and even when it found none.
    pub fn finish_scanned<R, T>(
        &self,
        mut rows: Vec<R>,
        seen: u64,
        floor: Option<Vec<String>>,
        key: impl Fn(&R) -> Vec<String>,
        map: impl FnMut(R) -> T,
    ) -> Page<T> {
        rows.truncate(self.limit as usize);
        if seen > rows.len() as u64 {
            return self.page(rows, true, key, map);
        }
        match floor {
            None => self.page(rows, false, key, map),
            Some(floor) => Page {
                items: rows.into_iter().map(map).collect(),
                next_cursor: Some(encode(self.list, &self.filters, floor)),
            },
        }
    }

    /// The page of `rows` (already cut to the page), with a cursor after the last when
    /// `more` follow.
    fn page<R, T>(
        &self,
        rows: Vec<R>,
        more: bool,
        key: impl Fn(&R) -> Vec<String>,
        map: impl FnMut(R) -> T,
    ) -> Page<T> {
        let next_cursor = match (more, rows.last()) {
            (true, Some(last)) => Some(encode(self.list, &self.filters, key(last))),
            _ => None,
        };
        Page {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }

    /// The rows of a byte-bounded page statement and how many rows its scan saw (its
    /// `listed_seen` column, the same on every row; see [`PageQuery::finish_seen`]).
    pub fn rows_and_seen<M: sea_orm::FromQueryResult>(
        rows: &[sea_orm::QueryResult],
    ) -> CoreResult<(Vec<M>, u64)> {
        let seen = match rows.first() {
            Some(row) => row.try_get::<i64>("", "listed_seen")?,
            None => 0,
        };
        let models = rows
            .iter()
            .map(|row| M::from_query_result(row, ""))
            .collect::<Result<_, _>>()?;
        Ok((models, u64::try_from(seen).unwrap_or(0)))
    }

    /// Like [`PageQuery::finish`] with a conversion that can fail (a corrupt row).
    pub fn try_finish<R, T>(
        &self,
        rows: Vec<R>,
        key: impl Fn(&R) -> Vec<String>,
        map: impl FnMut(R) -> CoreResult<T>,
    ) -> CoreResult<Page<T>> {
        let page = self.finish(rows, key, map);
        Ok(Page {
            items: page.items.into_iter().collect::<CoreResult<_>>()?,
            next_cursor: page.next_cursor,
        })
    }

    /// The sort key to continue after, one string per sort column (empty on a first page).
    pub fn after(&self) -> Option<&[String]> {
        self.after.as_deref()
    }

    /// The single-string sort key to continue after, for lists sorted by one column.
    pub fn after_one(&self) -> Option<&str> {
        self.after
            .as_ref()
            .and_then(|k| k.first())
            .map(String::as_str)
    }
}

fn fingerprint(filters: &str) -> String {
    let digest = Sha256::digest(filters.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..6])
}

fn encode(list: &str, filters: &str, key: Vec<String>) -> String {
    let body = CursorBody {
        l: list.to_owned(),
        f: filters.to_owned(),
        k: key,
    };
    let json = serde_json::to_vec(&body).expect("cursor body serializes");
    URL_SAFE_NO_PAD.encode(json)
}

fn decode(cursor: &str, list: &str, filters: &str) -> CoreResult<Vec<String>> {
    let bad = |why: &str| CoreError::invalid("cursor", why.to_owned());
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad("not a cursor returned by this list"))?;
    let body: CursorBody =
        serde_json::from_slice(&bytes).map_err(|_| bad("not a cursor returned by this list"))?;
    // Keys go into queries: refuse what storage cannot hold (a NUL is a server error on
    // PostgreSQL) rather than trust a cursor the client may have forged.
    if body.k.iter().any(|k| k.chars().any(char::is_control)) {
        return Err(bad("not a cursor returned by this list"));
    }
    if body.l != list {
        return Err(bad("this cursor belongs to another list"));
    }
    if body.f != filters {
        return Err(bad("this cursor was made with other filters; repeat them"));
    }
    Ok(body.k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(limit: Option<u32>, cursor: Option<&str>) -> PageRequest {
        PageRequest {
            limit,
            cursor: cursor.map(str::to_owned),
        }
    }

    #[test]
    fn limit_bounds() {
        assert_eq!(req(None, None).validate("orgs", "").unwrap().limit, 50);
        assert_eq!(
            req(Some(200), None).validate("orgs", "").unwrap().limit,
            200
        );
        for bad in [0, 201] {
            let err = req(Some(bad), None).validate("orgs", "").unwrap_err();
            assert_eq!(err.code(), "invalid", "limit {bad}");
        }
    }

    #[test]
    fn cursor_round_trips_and_marks_the_last_page() {
        let q = req(Some(2), None).validate("orgs", "q=a").unwrap();
        let page = q.finish(vec!["a", "b", "c"], |r| vec![r.to_string()], |r| r);
        assert_eq!(page.items, vec!["a", "b"]);
        let cursor = page.next_cursor.expect("more rows follow");
        let q2 = req(Some(2), Some(&cursor)).validate("orgs", "q=a").unwrap();
        assert_eq!(q2.after_one(), Some("b"));
        let last = q2.finish(vec!["c"], |r| vec![r.to_string()], |r| r);
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn a_page_cut_short_by_bytes_still_has_a_cursor() {
        let q = req(Some(3), None).validate("jobs", "").unwrap();
        let key = |r: &&str| vec![r.to_string()];
        // The scan saw four rows (one past the limit): cut by the limit.
        let page = q.finish_seen(vec!["a", "b", "c", "d"], 4, key, |r| r);
        assert_eq!(page.items, vec!["a", "b", "c"]);
        assert!(page.next_cursor.is_some());
        // It saw three and the bytes kept one: more follow, after the one kept.
        let page = q.finish_seen(vec!["a"], 3, key, |r| r);
        assert_eq!(page.items, vec!["a"]);
        let cursor = page.next_cursor.expect("cut by the bytes");
        let next = req(Some(3), Some(&cursor)).validate("jobs", "").unwrap();
        assert_eq!(next.after_one(), Some("a"));
        // It saw two and kept both: the last page.
        let page = q.finish_seen(vec!["a", "b"], 2, key, |r| r);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn a_page_whose_scan_stopped_continues_after_the_last_row_read() {
        let q = req(Some(3), None).validate("jobs", "").unwrap();
        let key = |r: &&str| vec![(*r).to_owned()];
        let after = |page: Page<&str>| {
            let cursor = page.next_cursor.expect("another page follows");
            let next = req(Some(3), Some(&cursor)).validate("jobs", "").unwrap();
            next.after_one().map(str::to_owned)
        };
        // The scan found nothing before it stopped at "m": an empty page, then after "m".
        let page = q.finish_scanned(Vec::<&str>::new(), 0, Some(vec!["m".into()]), key, |r| r);
        assert!(page.items.is_empty());
        assert_eq!(after(page), Some("m".to_owned()));
        // It found two (all it saw) before "m": both, then after "m", not after "b".
        let page = q.finish_scanned(vec!["a", "b"], 2, Some(vec!["m".into()]), key, |r| r);
        assert_eq!(page.items, vec!["a", "b"]);
        assert_eq!(after(page), Some("m".to_owned()));
        // Cut by the limit before the scan stopped: after the last row on the page.
        let page = q.finish_scanned(
            vec!["a", "b", "c", "d"],
            4,
            Some(vec!["m".into()]),
            key,
            |r| r,
        );
        assert_eq!(page.items, vec!["a", "b", "c"]);
        assert_eq!(after(page), Some("c".to_owned()));
        // A scan that reached the end of the list: the last page.
        let page = q.finish_scanned(vec!["a"], 1, None, key, |r| r);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn cursor_is_bound_to_list_and_filters() {
        let q = req(Some(1), None).validate("orgs", "q=a").unwrap();
        let cursor = q
            .finish(vec![1, 2], |r| vec![r.to_string()], |r| r)
            .next_cursor
            .unwrap();
        for (list, filters) in [("jobs", "q=a"), ("orgs", "q=b")] {
            let err = req(None, Some(&cursor))
                .validate(list, filters)
                .unwrap_err();
            assert_eq!(err.code(), "invalid");
        }
        let err = req(None, Some("%%%")).validate("orgs", "").unwrap_err();
        assert_eq!(err.code(), "invalid");
        // A forged cursor carrying a NUL (which PostgreSQL cannot store) is refused.
        let forged = encode("orgs", "", vec!["a\u{0}b".into()]);
        let err = req(None, Some(&forged)).validate("orgs", "").unwrap_err();
        assert_eq!(err.code(), "invalid");
    }
}
