//! `GET /v1/orgs/{org}/jobs/{job}/events` (`jobs.events`, `jobs:read`): a job's events as
//! one JSON page (a long poll with `wait`), or as server-sent events when the client asks
//! for `text/event-stream` (one event per job event, `id` its `seq`; the stream ends when
//! the job ends, or after [`STREAM_LIFETIME`]: reconnect with `Last-Event-ID`).

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};
use poem::web::Data;
use poem::web::sse::Event;
use poem::{IntoResponse, Request, Response};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{EventStream, Json, Payload};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, OpenApi};
use tokio::time::Instant;
use velu_core::events::{self, Follow};
use velu_core::orgs::OrgRef;
use velu_core::waiting::{WaitSlot, Waiting};
use velu_core::{Principal, Velu};

use super::Tag;
use crate::auth::Auth;
use crate::model::events::{JobEvent, JobEvents};
use crate::problem::ApiResult;

/// Longest life of one event stream (the client reconnects with `Last-Event-ID`).
pub const STREAM_LIFETIME: Duration = Duration::from_secs(600);
/// How long one look of a stream waits before looking again (and checking its lifetime
/// and that its key is still usable: a revoked key's streams end within this).
const STREAM_SLICE: Duration = Duration::from_secs(5);
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Job events.
pub struct EventsApi;

/// The events as they happen.
type Events = EventStream<BoxStream<'static, JobEvent>>;

/// The answer of `jobs.events`: a page, or the event stream.
pub enum EventsAnswer {
    /// `application/json`.
    Page(Json<JobEvents>),
    /// `text/event-stream`.
    Stream(Events),
}

impl ApiResponse for EventsAnswer {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "A page of events (`application/json`), or, for \
                              `Accept: text/event-stream`, the events as they happen: \
                              each SSE event's `data` is one event document and its `id` \
                              the event's `seq`; the stream ends when the job ends.",
                status: Some(200),
                status_range: None,
                content: vec![
                    MetaMediaType {
                        content_type: Json::<JobEvents>::CONTENT_TYPE,
                        schema: Json::<JobEvents>::schema_ref(),
                    },
                    MetaMediaType {
                        content_type: Events::CONTENT_TYPE,
                        schema: Events::schema_ref(),
                    },
                ],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        JobEvents::register(registry);
        JobEvent::register(registry);
    }
}

impl IntoResponse for EventsAnswer {
    fn into_response(self) -> Response {
        match self {
            EventsAnswer::Page(page) => page.into_response(),
            EventsAnswer::Stream(events) => events.into_response(),
        }
    }
}

/// Whether the client asked for server-sent events.
fn wants_stream(req: &Request) -> bool {
    req.headers()
        .get_all(poem::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// `Last-Event-ID` of a reconnecting event stream, when it is a `seq`.
fn last_event_id(req: &Request) -> Option<i64> {
    req.header("Last-Event-ID")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|n| *n >= 0)
}

/// What a stream carries from one look to the next.
struct Stream {
    velu: Velu,
    who: Principal,
    org: OrgRef,
    job: String,
    follow: Follow,
    pending: VecDeque<JobEvent>,
    ended: bool,
    until: Instant,
    /// When the key was last found usable (the request's authentication, at first).
    checked: Instant,
    /// Counts against the key's waiting readers while the stream lives.
    _slot: WaitSlot,
}

/// The events after `first` (already read: a refusal is a problem, never a stream that
/// ends at once), as they happen, until the job ends or the stream's lifetime passes.
fn follow(mut s: Stream, first: events::JobEvents) -> Events {
    s.ended = first.ended;
    s.pending
        .extend(first.events.into_iter().map(JobEvent::from));
    let items = stream::unfold(s, |mut s| async move {
        loop {
            if let Some(event) = s.pending.pop_front() {
                return Some((event, s));
            }
            let now = Instant::now();
            if s.ended || now >= s.until {
                return None;
            }
            // A key revoked or expired since it was last checked ends its streams.
            if now >= s.checked + STREAM_SLICE {
                match velu_core::auth::key_still_usable(&s.velu, &s.who).await {
                    Ok(true) => s.checked = now,
                    Ok(false) => return None,
                    Err(e) => {
                        tracing::warn!(error = %e, job = %s.job, "job event stream stopped");
                        return None;
                    }
                }
            }
            let deadline = (now + STREAM_SLICE).min(s.until);
            match s
                .follow
                .next(&s.velu, &s.who, &s.org, &s.job, deadline)
                .await
            {
                Ok(page) => {
                    s.ended = page.ended;
                    s.pending
                        .extend(page.events.into_iter().map(JobEvent::from));
                }
                Err(e) => {
                    tracing::warn!(error = %e, job = %s.job, "job event stream stopped");
                    return None;
                }
            }
        }
    });
    EventStream::new(items.boxed())
        .keep_alive(KEEP_ALIVE)
        .to_event(|e: JobEvent| {
            let id = e.seq.to_string();
            Event::message(e.to_json_string()).id(id)
        })
}

#[OpenApi(tag = "Tag::Jobs")]
impl EventsApi {
    /// A job's events, oldest first, after `after`: queued, claimed, heartbeats (one per
    /// quiet minute), the progress lines the job writes, retries, cancel, the end
    /// (docs/events.md). With `wait`, a long poll: answers as soon as there is an event
    /// or the job has ended, or when the wait runs out (an empty page). With
    /// `Accept: text/event-stream`, server-sent events until the job ends (at most 10
    /// minutes a stream; resume with `Last-Event-ID`). Waiting readers are bounded per key
    /// and per org (`rate_limited`); a stream ends once its key is revoked or expires.
    /// Scope: `jobs:read`.
    #[oai(
        path = "/v1/orgs/:org/jobs/:job/events",
        method = "get",
        operation_id = "jobs.events"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn events(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        req: &Request,
        org: Path<String>,
        job: Path<String>,
        /// Only events after this `seq` (`next_after` of the previous page) [default: 0].
        #[oai(validator(minimum(value = "0"), maximum(value = "9007199254740991")))]
        after: Query<Option<i64>>,
        /// Page size [default: 100].
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// Seconds to wait for an event when there is none yet (a long poll) [default: 0].
        #[oai(validator(minimum(value = "0"), maximum(value = "30")))]
        wait: Query<Option<u32>>,
    ) -> ApiResult<EventsAnswer> {
        let org = OrgRef::new(org.0);
        let after = after.0.or_else(|| last_event_id(req));
        if wants_stream(req) {
            let slot = WaitSlot::take(Waiting::Events, &auth.0)?;
            let first = events::job_events(&velu, &auth.0, &org, &job, after, limit.0).await?;
            let s = Stream {
                velu: velu.0.clone(),
                who: auth.0,
                org,
                job: job.0,
                follow: Follow::new(Some(first.next_after), limit.0),
                pending: VecDeque::new(),
                ended: false,
                until: Instant::now() + STREAM_LIFETIME,
                checked: Instant::now(),
                _slot: slot,
            };
            return Ok(EventsAnswer::Stream(follow(s, first)));
        }
        let wait =
            Duration::from_secs(u64::from(wait.0.unwrap_or(0)).min(events::MAX_WAIT.as_secs()));
        let page = if wait.is_zero() {
            events::job_events(&velu, &auth.0, &org, &job, after, limit.0).await?
        } else {
            let _slot = WaitSlot::take(Waiting::Events, &auth.0)?;
            Follow::new(after, limit.0)
                .next(&velu, &auth.0, &org, &job, Instant::now() + wait)
                .await?
        };
        Ok(EventsAnswer::Page(Json(page.into())))
    }
}
