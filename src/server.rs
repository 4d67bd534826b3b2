//! Start-up and shutdown of `crier serve`: load config, open the store, settle the admin token,
//! bind, serve until a shutdown signal, then flush. Tests call [`Server::build`] with port 0 and a
//! temporary data dir and get the same server the binary runs.

use crate::api::{self, AppState, Limits, Tokens};
use crate::channels;
use crate::config::Config;
use crate::dispatch::{Dispatcher, Running};
use crate::intake::Intake;
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
    running: Running,
    scheduler: tokio::task::JoinHandle<()>,
    team: Arc<api::authz::Team>,
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
        let loaded = channels::load(&config.channels_dir)
            .context("cannot load the channel definitions (fix the file named below)")?;
        for (name, why) in &loaded.skipped {
            tracing::warn!(channel = %name, "channel skipped: {why}");
        }
        for ch in &loaded.active {
            tracing::info!(channel = %ch.name, kind = ch.kind.as_str(), "channel active");
        }
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
        crate::store::private_dir(&config.data_dir)
            .context("cannot prepare the data directory; choose another with --data")?;
        // The store's error says what is wrong (in use, read-only, damaged) and what to do.
        let store = Store::open(&config.data_dir.join("db"))
            .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
        let (admin, source) = match std::env::var(&config.admin_token_env) {
            Ok(t) if t.trim().len() >= 16 => {
                (t.trim().to_owned(), TokenSource::Env(config.admin_token_env.clone()))
            }
            Ok(t) if !t.trim().is_empty() => anyhow::bail!(
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
        let (dispatcher, running) = Dispatcher::start(
            store.clone(),
            templates.clone(),
            render.clone(),
            loaded.active,
            &config.data_dir,
            stopped,
        )
        .await?;
        let scheduler = Scheduler::new(
            store.clone(),
            templates.clone(),
            render.clone(),
            config.schedule.clone(),
            dispatcher.clone(),
        );
        let scheduler_task = tokio::spawn(scheduler.run(stop.subscribe()));
        let intake = Arc::new(Intake::new(store.clone(), config.intake.clone()));
        // Posts the intake's held-back public updates; ends with the shutdown signal.
        tokio::spawn(intake.clone().run(dispatcher.clone(), stop.subscribe()));
        let team = Arc::new(api::authz::Team::default());
        let state = AppState::new(api::Shared {
            store: store.clone(),
            tokens: Arc::new(Tokens::admin(admin)),
            templates,
            render,
            dispatcher: dispatcher.clone(),
            intake,
            skipped_channels,
            team: team.clone(),
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
                running,
                scheduler: scheduler_task,
                team,
            },
            source,
        ))
    }

    /// A handle to the store (tests use it to prove that rejected requests write nothing).
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The dispatcher (tests use its metrics).
    pub fn dispatcher(&self) -> Dispatcher {
        self.dispatcher.clone()
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, stops the dispatcher
    /// from claiming and waits for its in-flight sends, then flushes the store.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // The peer address is what the audit log and the login throttle know the client by.
        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the HTTP server failed")?;
        let _ = self.stop.send(true);
        if let Err(e) = self.scheduler.await {
            tracing::error!(error = %e, "the scheduler task failed");
        }
        self.running.finished().await;
        // Token last-used times kept in memory go out with the final flush.
        self.team.persist(&self.store);
        let flushed = self.store.durable().await;
        if let Some(unsaved) = self.store.unsaved() {
            tracing::error!("at shutdown: {unsaved}");
        }
        flushed.context("final flush of the store failed; writes since the last successful flush were not saved")?;
        Ok(())
    }
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

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
