//! [`Velu`]: the handle every operation takes (database, settings, task catalog, caches).

use std::sync::Arc;
use std::time::Duration;

use crate::auth::{AuthConfig, Authenticator, flush_last_used};
use crate::db::notify::{self, Change};
use crate::db::{Db, SchemaPolicy};
use crate::keys::hashing::KeyHasher;
use crate::keys::pepper;
use crate::metrics::Metrics;
use crate::private_fs::{ensure_private_dir, ensure_private_file};
use crate::settings::Settings;
use crate::tasks::TaskCatalog;
use crate::{CoreError, CoreResult};

/// How often pending `last_used_at` values are written.
const LAST_USED_FLUSH: Duration = Duration::from_secs(30);

/// How a process opens Velu.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// What to do about pending migrations; `None` means the backend's default: apply
    /// them on SQLite, require them applied on PostgreSQL.
    pub schema: Option<SchemaPolicy>,
    /// Long-running processes (`serve`, `worker`): listen for other nodes' changes and
    /// write `last_used_at` in the background.
    pub background: bool,
    /// Authentication tuning.
    pub auth: AuthConfig,
}

/// The application handle. Cheap to clone.
#[derive(Clone)]
pub struct Velu {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    settings: Settings,
    tasks: TaskCatalog,
    hasher: Option<KeyHasher>,
    /// The key that seals org secrets, or why there is none (`crate::secrets::kek`).
    kek: Result<crate::secrets::Kek, String>,
    auth: Authenticator,
    metrics: Arc<Metrics>,
    api_requests: crate::usage::ApiRequests,
    /// Single submits waiting to share a transaction (`jobs/group.rs`).
    submits: crate::jobs::GroupCommitter,
    jobs_ready: tokio::sync::watch::Sender<u64>,
    /// The orgs the wake-ups since the last claim named (a local worker's, or one of
    /// the worker protocol's).
    ready_hints: crate::worker::ready_hints::ReadyHints,
    /// The lists of ready orgs this server's worker-protocol claims share.
    shared_scans: crate::worker::shared_scan::SharedScans,
    tasks_running: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// A [`Velu`] that a background task holds without keeping it alive.
#[derive(Clone)]
pub(crate) struct WeakVelu(std::sync::Weak<Inner>);

impl WeakVelu {
    /// The handle, while some [`Velu`] still holds it.
    pub(crate) fn upgrade(&self) -> Option<Velu> {
        self.0.upgrade().map(|inner| Velu { inner })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in self
            .tasks_running
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            t.abort();
        }
    }
}

impl Velu {
    /// Connects, prepares the schema, resolves the pepper and starts background tasks as
    /// `opts` says.
    pub async fn open(
        settings: Settings,
        tasks: TaskCatalog,
        opts: OpenOptions,
    ) -> CoreResult<Velu> {
        let url = settings.database_url();
        if settings.is_default_database() {
            ensure_private_dir(&settings.home)?;
            ensure_private_file(&settings.home.join(crate::settings::SQLITE_FILE))?;
        }
        let mut db = Db::connect_with(&url, settings.db_pool_size()).await?;
        let policy = opts.schema.unwrap_or_else(|| db.default_schema_policy());
        db.prepare_schema(policy).await?;
        if !db.runs_as_app_role() && policy != SchemaPolicy::Ignore {
            // The migrations just created the app role: connect again as it, or refuse
            // to run without row-level security (fail closed).
            db.close().await;
            db = Db::connect_with(&url, settings.db_pool_size()).await?;
            if !db.runs_as_app_role() {
                return Err(CoreError::Config(format!(
                    "the database role {role} is missing or not granted to this user; run \
                     `velu-cli migrate up`, or as a superuser: CREATE ROLE {role} NOLOGIN; \
                     GRANT {role} TO <user> (docs/operations.md)",
                    role = crate::db::rls::APP_ROLE
                )));
            }
        }
        Velu::assemble(db, settings, tasks, opts)
    }

    /// Builds the handle around an open database whose schema is ready.
    pub fn assemble(
        db: Db,
        settings: Settings,
        tasks: TaskCatalog,
        opts: OpenOptions,
    ) -> CoreResult<Velu> {
        let hasher = pepper::resolve(&settings, db.backend())?.map(KeyHasher::new);
        let metrics = Arc::new(Metrics::new());
        let kek = crate::secrets::resolve_kek(&settings);
        let velu = Velu {
            inner: Arc::new(Inner {
                db,
                settings,
                tasks,
                hasher,
                kek,
                auth: Authenticator::new(opts.auth),
                metrics,
                jobs_ready: tokio::sync::watch::Sender::new(0),
                ready_hints: Default::default(),
                shared_scans: Default::default(),
                tasks_running: std::sync::Mutex::new(Vec::new()),
                api_requests: crate::usage::ApiRequests::default(),
                submits: crate::jobs::GroupCommitter::default(),
            }),
        };
        if opts.background {
            velu.start_background();
        }
        Ok(velu)
    }

    fn start_background(&self) {
        let weak = Arc::downgrade(&self.inner);
        let mut running = Vec::new();
        let listener_weak = weak.clone();
        if let Some(listener) = notify::spawn_listener(
            self.db(),
            Arc::new(move |change| {
                if let Some(inner) = listener_weak.upgrade() {
                    Velu { inner }.apply_change(&change);
                }
            }),
        ) {
            running.push(listener);
        }
        let watcher_weak = weak.clone();
        if let Some(watcher) = crate::db::sqlite_watch::spawn_commit_watcher(
            self.db(),
            Arc::new(move || {
                // Another process (or connection) committed: jobs may be ready. Caches are
                // left alone: a commit says nothing about what changed.
                if let Some(inner) = watcher_weak.upgrade() {
                    inner.ready_hints.unknown();
                    inner.jobs_ready.send_modify(|n| *n = n.wrapping_add(1));
                }
            }),
        ) {
            running.push(watcher);
        }
        let db = self.db().clone();
        running.push(tokio::spawn(async move {
            crate::db::autovacuum::warn_if_off(&db).await;
        }));
        running.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(LAST_USED_FLUSH);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let velu = Velu { inner };
                if let Err(e) = flush_last_used(&velu).await {
                    tracing::warn!(error = %e, "writing last_used_at failed; will retry");
                }
                if let Err(e) = crate::usage::flush_api_requests(&velu).await {
                    tracing::warn!(error = %e, "writing API request counts failed; will retry");
                }
            }
        }));
        self.inner
            .tasks_running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(running);
    }

    /// Writes what is pending (last-use times, API request counts) and stops background
    /// tasks.
    pub async fn shutdown(&self) {
        if let Err(e) = flush_last_used(self).await {
            tracing::warn!(error = %e, "writing last_used_at at shutdown failed");
        }
        if let Err(e) = crate::usage::flush_api_requests(self).await {
            tracing::warn!(error = %e, "writing API request counts at shutdown failed");
        }
        for t in self
            .inner
            .tasks_running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The resolved settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The task catalog.
    pub fn tasks(&self) -> &TaskCatalog {
        &self.inner.tasks
    }

    /// The authentication state.
    pub fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// API requests counted by this process and not yet written (`usage`).
    pub fn api_requests(&self) -> &crate::usage::ApiRequests {
        &self.inner.api_requests
    }

    /// This process's metrics (`metrics::scrape` renders them).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The key hasher, or a configuration error when no pepper is set (PostgreSQL).
    pub fn hasher(&self) -> CoreResult<&KeyHasher> {
        self.inner.hasher.as_ref().ok_or_else(pepper::missing)
    }

    /// The key that seals org secrets, or `config` (fail closed) when none is usable.
    pub fn secrets_kek(&self) -> CoreResult<&crate::secrets::Kek> {
        self.inner
            .kek
            .as_ref()
            .map_err(|why| crate::CoreError::Config(why.clone()))
    }

    /// The stored form of a new secret (HMAC-SHA256 with the pepper; see `keys::hashing`).
    pub(crate) fn hash_secret(&self, secret: &str) -> CoreResult<String> {
        Ok(self.hasher()?.hash(secret))
    }

    /// Called after a local commit: applies the change to this process's caches at once.
    pub(crate) fn changed(&self, change: Change) {
        self.apply_change(&change);
    }

    fn apply_change(&self, change: &Change) {
        tracing::debug!(?change, "change");
        self.inner.auth.invalidate(change);
        match change {
            Change::Jobs(org) => self.inner.ready_hints.org(org),
            Change::Resync => self.inner.ready_hints.unknown(),
            Change::Key(_) | Change::Org(_) => return,
        }
        self.inner
            .jobs_ready
            .send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The group committer of single submits.
    pub(crate) fn submits(&self) -> &crate::jobs::GroupCommitter {
        &self.inner.submits
    }

    /// How many times a group of single submits waited out `admission::PATIENCE` for an
    /// org whose turn another transaction held (PostgreSQL; always 0 on SQLite). An org
    /// found busy is not waited for again until a group finds it free (docs/security.md).
    pub fn submit_waits_run_out(&self) -> u64 {
        self.inner.submits.busy_orgs().waits_run_out()
    }

    /// A handle that does not keep this one alive, for a background task.
    pub(crate) fn downgrade(&self) -> WeakVelu {
        WeakVelu(Arc::downgrade(&self.inner))
    }

    /// Keeps a background task with this handle: aborted by [`Velu::shutdown`] or when the
    /// last handle is dropped.
    pub(crate) fn keep_background(&self, task: tokio::task::JoinHandle<()>) {
        self.inner
            .tasks_running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    /// Changes whenever jobs may have become ready (submitted here, announced by another
    /// node through PostgreSQL notifications, or, on SQLite, after a commit of another
    /// process: `db/sqlite_watch.rs`).
    pub fn jobs_ready(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.jobs_ready.subscribe()
    }

    /// Where wake-ups' orgs go: every list of ready orgs in this process (a local
    /// worker's, the server's shared ones) hears them through its own inbox
    /// (`worker/ready_hints.rs`).
    pub(crate) fn ready_hints(&self) -> &crate::worker::ready_hints::ReadyHints {
        &self.inner.ready_hints
    }

    /// The lists of ready orgs this server's worker-protocol claims share
    /// (`worker/shared_scan.rs`).
    pub(crate) fn shared_scans(&self) -> &crate::worker::shared_scan::SharedScans {
        &self.inner.shared_scans
    }
}
