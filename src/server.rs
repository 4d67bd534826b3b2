//! Start-up and shutdown of `crier serve`: load config, open the store, settle the admin token,
//! bind, serve until a shutdown signal, then flush. Tests call [`Server::build`] with port 0 and a
//! temporary data dir and get the same server the binary runs.

use crate::api::{self, AppState, Limits, Tokens};
use crate::channels;
use crate::config::Config;
use crate::dispatch::{Clock, Dispatcher, Running};
use crate::intake::Intake;
use crate::leadership::Leadership;
use crate::pg::leader::{Elector, LEADER_LOCK};
use crate::pg::settings::StoreSetting;
use crate::pg::store::PgStore;
use crate::pg::Pg;
use crate::render::Templates;
use crate::schedule::Scheduler;
use crate::store::Store;
use crate::token;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A bound, ready-to-run server.
pub struct Server {
    listener: TcpListener,
    router: axum::Router,
    store: Store,
    dispatcher: Dispatcher,
    stop: watch::Sender<bool>,
    /// Set when the shutdown signal arrives, before in-flight requests are drained: long-lived
    /// responses (the delivery SSE stream) end on it, so the drain does not wait for them.
    closing: watch::Sender<bool>,
    running: Running,
    scheduler: tokio::task::JoinHandle<()>,
    backups: Option<tokio::task::JoinHandle<()>>,
    channels: ChannelSummary,
    timezone: chrono_tz::Tz,
    team: Arc<api::authz::Team>,
    /// On PostgreSQL: the connection holding this node's claim on the database (see
    /// [`open_postgres`]); released when the server ends.
    /// Whether this node runs the singletons; with PostgreSQL its elector's connection, which
    /// is closed (freeing the leader lock at once) when the server is dropped.
    leadership: Leadership,
}

/// What start-up found in the channels folder, for the one summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelSummary {
    pub active: Vec<String>,
    /// Skipped because none of their credential variables is set yet.
    pub waiting: Vec<String>,
    pub disabled: Vec<String>,
    /// Skipped with credentials partly set or malformed (each also logged as a warning).
    pub misconfigured: Vec<String>,
}

impl ChannelSummary {
    fn from_loaded(loaded: &channels::Loaded) -> Self {
        ChannelSummary {
            active: loaded.active.iter().map(|c| c.name.clone()).collect(),
            waiting: loaded.waiting.clone(),
            disabled: loaded.disabled.clone(),
            misconfigured: loaded.misconfigured().map(|(n, _)| n.clone()).collect(),
        }
    }

    /// `2 active (log, log-public); 13 waiting for credentials (bluesky, …)`, and where to read
    /// what each needs.
    pub fn describe(&self) -> String {
        let part = |n: &[String], what: &str| {
            (!n.is_empty()).then(|| format!("{} {what} ({})", n.len(), n.join(", ")))
        };
        let parts: Vec<String> = [
            Some(format!(
                "{} active ({})",
                self.active.len(),
                self.active.join(", ")
            )),
            part(&self.waiting, "waiting for credentials"),
            part(&self.misconfigured, "misconfigured"),
            part(&self.disabled, "disabled"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut out = format!("channels: {}", parts.join("; "));
        if !(self.waiting.is_empty() && self.misconfigured.is_empty()) {
            out.push_str(
                " — `crier channels check` and GET /readyz say what each needs (docs/CHANNELS.md)",
            );
        }
        out
    }
}

/// Where the admin token came from, for the start-up message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Env(String),
    File { generated: bool },
}

impl Server {
    /// Opens the store under `<data>/db`, settles the admin token, and binds the listener.
    pub async fn build(config: &Config) -> anyhow::Result<(Self, TokenSource)> {
        // Channels and templates first: a broken file stops start-up before anything is written.
        let loaded = channels::load_with_env(&config.channels_dir, config.env.lookup())
            .context("cannot load the channel definitions (fix the file named below)")?;
        // A shipped channel without credentials is normal (the summary line counts it); one
        // half set up or with a malformed value is a problem an operator must see.
        for (name, why) in loaded.misconfigured() {
            tracing::warn!(channel = %name, "channel skipped: {why}");
        }
        for (name, why) in &loaded.skipped {
            tracing::debug!(channel = %name, "channel skipped: {why}");
        }
        for ch in &loaded.active {
            tracing::debug!(channel = %ch.name, kind = ch.kind.as_str(), "channel active");
        }
        let channel_summary = ChannelSummary::from_loaded(&loaded);
        check_channel_names(config, &loaded)?;
        let skipped_channels = Arc::new(loaded.skipped.clone());
        let overrides: Vec<(String, std::path::PathBuf)> = loaded
            .active
            .iter()
            .filter_map(|c| c.templates.clone().map(|t| (c.name.clone(), t)))
            .collect();
        let templates = Templates::load(&config.templates_dir, &overrides).with_context(|| {
            format!(
                "cannot load the message templates from {} (fix the template below, or point --templates elsewhere)",
                config.templates_dir.display()
            )
        })?;
        // crier's one clock, injected into the store and the dispatcher (and through it the
        // scheduler, sessions and the API): a rehearsal (`clock_start`) moves all of them.
        let clock = config
            .clock_start
            .map_or_else(Clock::wall, Clock::starting_at);
        // PostgreSQL is reached (and migrated) before anything is written locally, so a wrong
        // URL or password leaves no data directory behind.
        let pg_store = match &config.store {
            StoreSetting::Sled => None,
            StoreSetting::Postgres(p) => Some(open_postgres(p, config, clock).await?),
        };
        crate::store::private_dir(&config.data_dir)
            .context("cannot prepare the data directory; choose another with --data")?;
        if let Some(b) = &config.backup {
            b.prepare().map_err(anyhow::Error::msg)?;
        }
        // The store's error says what is wrong (in use, read-only, damaged) and what to do.
        let (store, leadership) = match pg_store {
            Some((pg, lead)) => (Store::Pg(Box::new(pg)), lead),
            None => (
                Store::open_with_clock(&config.data_dir.join("db"), clock).with_context(|| {
                    format!("cannot open the store in {}", config.data_dir.display())
                })?,
                Leadership::always(),
            ),
        };
        let (admin, source) = match config.env.var(&config.admin_token_env) {
            Some(t) if t.trim().len() >= 16 => {
                (t.trim().to_owned(), TokenSource::Env(config.admin_token_env.clone()))
            }
            Some(t) if !t.trim().is_empty() => anyhow::bail!(
                "the token in ${} is shorter than 16 characters; use a long random token (e.g. `openssl rand -hex 32`)",
                config.admin_token_env
            ),
            _ => {
                let (t, generated) = token::load_or_create_admin_token(&config.data_dir)?;
                (t, TokenSource::File { generated })
            }
        };
        let templates = Arc::new(templates);
        let render = Arc::new(config.render.clone());
        let (stop, stopped) = watch::channel(false);
        let (closing, closing_rx) = watch::channel(false);
        let (dispatcher, running) = Dispatcher::start(
            store.clone(),
            templates.clone(),
            render.clone(),
            loaded.active,
            &config.data_dir,
            clock,
            stopped,
        )
        .await?;
        if matches!(store, Store::Pg(_)) {
            dispatcher.metrics().set_leadership(leadership.view());
        }
        let scheduler = Scheduler::new(
            store.clone(),
            templates.clone(),
            render.clone(),
            config.schedule.clone(),
            dispatcher.clone(),
        );
        let scheduler_task = tokio::spawn(scheduler.run(stop.subscribe(), leadership.clone()));
        let backups = config.backup.clone().map(|b| {
            tokio::spawn(crate::backups::run(
                store.clone(),
                b,
                dispatcher.clock(),
                stop.subscribe(),
            ))
        });
        // The static copy of the public pages, rewritten when they change.
        if let Some(dir) = config.render.page.static_export_dir.clone() {
            tokio::spawn(crate::web::export::run(
                dir,
                store.clone(),
                render.clone(),
                Arc::new(config.public.clone()),
                dispatcher.clone(),
                stop.subscribe(),
            ));
        }
        let intake = Arc::new(Intake::new(store.clone(), config.intake.clone()));
        // Posts the intake's held-back public updates; ends with the shutdown signal.
        tokio::spawn(
            intake
                .clone()
                .run(dispatcher.clone(), stop.subscribe(), leadership.clone()),
        );
        // Deletes self-service sign-ups that were never confirmed.
        tokio::spawn(crate::web::subscribe::purge_loop(
            store.clone(),
            dispatcher.clone(),
            config.subscriptions.purge_after,
            stop.subscribe(),
            leadership.clone(),
        ));
        let mut auth = config.auth.clone();
        auth.site(config.render.public_url.as_deref(), &config.render.org_name);
        // Sessions and TOTP read the dispatcher's clock: one clock for the whole server.
        auth.clock = auth.clock.rebased(dispatcher.clock());
        let team = Arc::new(api::authz::Team::new(auth));
        let state = AppState::new(api::Shared {
            store: store.clone(),
            tokens: Arc::new(Tokens::admin(admin)),
            templates,
            render,
            dispatcher: dispatcher.clone(),
            intake,
            skipped_channels,
            team: team.clone(),
            maintenance_remind_before: config.schedule.maintenance_remind_before,
            approval: Arc::new(api::approvals::ApprovalRules {
                settings: config.approval.clone(),
                staff: staff_channels(config),
            }),
            public: Arc::new(config.public.clone()),
            closing: closing_rx,
            subscriptions: Arc::new(crate::web::subscribe::Subscriptions::new(
                config.subscriptions.clone(),
                config
                    .render
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{}", config.bind)),
            )),
        });
        let router = api::router(
            state,
            Limits {
                max_body_bytes: config.max_body_bytes,
                import_max_bytes: config.import_max_bytes,
            },
        );
        let listener = TcpListener::bind(config.bind).await.with_context(|| {
            format!(
                "cannot listen on {}; is the port in use? choose another with --bind",
                config.bind
            )
        })?;
        Ok((
            Server {
                listener,
                router,
                store,
                dispatcher,
                stop,
                closing,
                running,
                scheduler: scheduler_task,
                backups,
                channels: channel_summary,
                timezone: config.render.timezone,
                team,
                leadership,
            },
            source,
        ))
    }

    /// This node's leadership: always with sled; elected among the nodes with PostgreSQL.
    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    /// A handle to the store (tests use it to prove that rejected requests write nothing).
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// What start-up found in the channels folder.
    pub fn channels(&self) -> &ChannelSummary {
        &self.channels
    }

    /// The one start-up line: where crier listens, where its data is, the organisation's time
    /// zone (times of day such as `--next-update-at 14:00` are read in it) and the channels.
    pub fn summary(&self, data_dir: &std::path::Path) -> anyhow::Result<String> {
        let zone = if self.timezone == chrono_tz::UTC {
            "UTC (set `timezone` in crier.toml for another)".to_owned()
        } else {
            self.timezone.name().to_owned()
        };
        Ok(format!(
            "crier listening on http://{} (data in {}); times of day in {zone}; {}",
            self.local_addr()?,
            data_dir.display(),
            self.channels.describe()
        ))
    }

    /// The dispatcher (tests use its metrics).
    pub fn dispatcher(&self) -> Dispatcher {
        self.dispatcher.clone()
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, stops the dispatcher
    /// from claiming and waits for its in-flight sends, then flushes and closes the store.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // The peer address is what the audit log and the login throttle know the client by.
        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let closing = self.closing;
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = closing.send(true);
            })
            .await
            .context("the HTTP server failed")?;
        let _ = self.stop.send(true);
        // No new singleton work from here on; with PostgreSQL another node takes over now.
        self.leadership.step_down();
        if let Err(e) = self.scheduler.await {
            tracing::error!(error = %e, "the scheduler task failed");
        }
        // A scheduled backup in progress finishes first.
        if let Some(b) = self.backups {
            if let Err(e) = b.await {
                tracing::error!(error = %e, "the scheduled-backup task failed");
            }
        }
        self.running.finished().await;
        // Token last-used times kept in memory go out with the final flush.
        self.team.persist(&self.store).await;
        let flushed = self.store.durable().await;
        if let Some(unsaved) = self.store.unsaved() {
            tracing::error!("at shutdown: {unsaved}");
        }
        flushed.context("final flush of the store failed; writes since the last successful flush were not saved")?;
        let commits = self.store.flush_stats().map_or_else(String::new, |f| {
            format!(
                " ({} writes in {} group commits since start)",
                f.waiters, f.syncs
            )
        });
        // Every clone of the store (the API's, background tasks') is closed with it: the
        // flusher has ended and sled's file lock is free when `run` returns, so the same data
        // directory can be opened again at once (a restart in the same process, a test).
        self.store
            .close()
            .await
            .context("the store did not close cleanly")?;
        tracing::info!(
            "crier stopped: in-flight requests answered, scheduler stopped, {} channel worker(s) finished their sends, store flushed to disk{}",
            self.channels.active.len(),
            commits
        );
        Ok(())
    }
}

/// Connects to PostgreSQL, brings the schema up to date and starts this node's part in the
/// leader election (other nodes on the same database are welcome: they share the outbox, and the
/// elected one runs the singletons). Each failure says what to check; none carries the password.
async fn open_postgres(
    p: &crate::pg::settings::PostgresSettings,
    config: &Config,
    clock: Clock,
) -> anyhow::Result<(PgStore, Leadership)> {
    let shown = crate::pg::redact_url(&p.url);
    if config.backup.is_some() {
        anyhow::bail!(
            "[backup] takes backups of the embedded sled store; with store = \"{shown}\" back \
             the database up with pg_dump or WAL archiving instead, and remove [backup]"
        );
    }
    let pg = Pg::new(&p.connect_options()).with_context(|| format!("store = \"{shown}\""))?;
    // One connection first, so an unreachable database or a wrong password is reported as that.
    drop(pg.client().await.with_context(|| {
        format!(
            "cannot connect to PostgreSQL at {shown} (is it running and reachable; is the \
             password in ${} right?)",
            p.password_env
        )
    })?);
    let store = PgStore::with_pg(pg, clock)
        .await
        .with_context(|| format!("cannot prepare the database at {shown}"))?
        .with_lease(p.lease);
    let elector = Elector::spawn(store.pg().clone(), LEADER_LOCK, p.leader_check);
    Ok((store, Leadership::elected(elector)))
}

/// Checks that every channel the config names exists (active, or skipped for missing
/// credentials), and that reminder channels reach staff, not subscribers.
fn check_channel_names(config: &Config, loaded: &channels::Loaded) -> anyhow::Result<()> {
    let known = |name: &str| {
        loaded.active.iter().any(|c| c.name == name)
            || loaded.skipped.iter().any(|(n, _)| n == name)
    };
    let mut named: Vec<(&str, &str)> = config.schedule.channel_names();
    named.extend(
        config
            .intake
            .channel_names()
            .into_iter()
            .map(|n| ("intake.routes[].channels", n)),
    );
    named.extend(
        config
            .intake
            .staff_channels
            .iter()
            .map(|n| ("intake.staff_channels", n.as_str())),
    );
    named.extend(
        config
            .approval
            .notify
            .iter()
            .map(|n| ("approval_notify", n.as_str())),
    );
    for (key, name) in named {
        if !known(name) {
            anyhow::bail!(
                "{key} names the channel \"{name}\", but there is no such file in {}; fix the name or add {name}.toml",
                config.channels_dir.display()
            );
        }
    }
    for name in &config.intake.staff_channels {
        if let Some(c) = loaded.active.iter().find(|c| &c.name == name) {
            if c.audience == channels::Audience::Subscribers {
                anyhow::bail!(
                    "intake.staff_channels names \"{name}\", which sends to subscribers; per-alert detail is for staff, so name a channel with a fixed target (audience = \"fixed\")"
                );
            }
        }
    }
    for name in &config.approval.notify {
        if let Some(c) = loaded.active.iter().find(|c| &c.name == name) {
            if c.audience == channels::Audience::Subscribers {
                anyhow::bail!(
                    "approval_notify names \"{name}\", which sends to subscribers; approval notes are for staff, so name a channel with a fixed target (audience = \"fixed\")"
                );
            }
        }
    }
    for name in &config.schedule.reminder_channels {
        if let Some(c) = loaded.active.iter().find(|c| &c.name == name) {
            if c.audience == channels::Audience::Subscribers {
                anyhow::bail!(
                    "promises.reminder_channels names \"{name}\", which sends to subscribers; reminders are for staff, so name a channel with a fixed target (audience = \"fixed\")"
                );
            }
        }
    }
    Ok(())
}

/// The channels that reach staff only: those told of approvals, reminded of promises, and given
/// monitoring detail. With `approval = "public"`, an update to these alone needs no approval.
fn staff_channels(config: &Config) -> Vec<String> {
    let mut v: Vec<String> = config
        .approval
        .notify
        .iter()
        .chain(&config.schedule.reminder_channels)
        .chain(&config.intake.staff_channels)
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives as soon as start-up has been reported still
/// stops crier gracefully (with its final flush) instead of killing it.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
