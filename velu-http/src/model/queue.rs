//! Pausing the queue: an org's queue state, a task kind's pause state, the pause body.

use poem_openapi::Object;
use velu_core::pause;

use super::common::{PlainText, ts};
use super::mirror::{each, mirror};

mirror! {
    /// Who paused, and when and why.
    pub struct Pause from pause::Pause {
        /// RFC 3339 UTC.
        pub paused_at: String = |t| ts(t),
        /// `cli` or `api_key`; `platform` for a kind paused for everyone, as an org key
        /// reads it.
        pub actor_type: String,
        /// OS user or key id of who paused; `platform` as above.
        pub actor_id: String,
        /// Why, if a reason was given.
        #[oai(nullable)]
        pub reason: Option<String>,
    }
}

mirror! {
    /// A task kind's pause state (for every org).
    pub struct TaskPauseState from pause::TaskPauseState {
        /// The kind.
        pub task: String,
        /// True while its jobs are held in every org.
        pub paused: bool,
        /// The pause, while paused.
        #[oai(nullable)]
        pub pause: Option<Pause> = |p| p.map(Into::into),
    }
}

mirror! {
    /// An org's queue.
    pub struct QueueState from pause::QueueState {
        /// The org.
        pub org_id: String,
        /// True while the org's queued jobs are held (running ones finish).
        pub paused: bool,
        /// The org's pause, while paused.
        #[oai(nullable)]
        pub pause: Option<Pause> = |p| p.map(Into::into),
        /// Task kinds paused in every org (their jobs are held here too).
        pub paused_tasks: Vec<TaskPauseState> = |t| each(t),
        /// Jobs queued (ready or not).
        pub queued: u64,
        /// Jobs running now.
        pub running: u64,
    }
}

/// Body of a pause (optional).
#[derive(Debug, Default, Object)]
#[oai(deny_unknown_fields)]
pub struct PauseBody {
    /// Why: one line, at most 500 characters, no control characters (trimmed; blank
    /// means none).
    #[oai(
        nullable,
        validator(max_length = 500, custom = "crate::model::common::NoControl")
    )]
    pub reason: Option<PlainText>,
}

impl From<PauseBody> for pause::PauseInput {
    fn from(b: PauseBody) -> Self {
        pause::PauseInput {
            reason: b.reason.map(String::from),
        }
    }
}
