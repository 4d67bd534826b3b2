//! The command line (clap derive). `serve` runs the server; every other command is a client of
//! the HTTP API, so the CLI and the API can never disagree about the rules.
//!
//! Exit codes: 0 ok, 2 usage error, 3 rejected by the server (4xx; its message is printed),
//! 4 server unreachable or failing (5xx); `channels check`: 1 when a channel's check failed.

mod approvals;
mod backup;
mod check;
pub mod client;
mod output;
mod store_migrate;
mod templates;
mod texts;
mod totp;
mod users;

use crate::api::components::SetComponent;
use crate::api::deliveries::{Requeued, Status};
use crate::api::incidents::{CreateIncident, IncidentDetail, IncidentView, PostUpdate, Transition};
use crate::api::intake::IntakeReply;
use crate::api::notices::{NewNotice, NoticeView};
use crate::api::preview::PreviewBody;
use crate::api::subscribers::{AddSubscriber, ChangeSubscriber, ImportReport, SubscriberView};
use crate::config::{Config, Overrides};
use crate::domain::{IncidentKind, Locale, Notice};
use crate::server::{self, Server, TokenSource};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use client::{Body, CliError, Client};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// The help heading of the options that only clients use (`serve` refuses them).
const CLIENT_OPTIONS: &str = "Client options";

/// What to use instead of each client option that `serve` refuses.
const NOT_FOR_SERVE: [(&str, &str); 3] = [
    (
        "url",
        "--url names the server a client talks to; `serve` listens where --bind, CRIER_BIND or `bind` in crier.toml says (default 127.0.0.1:8080)",
    ),
    (
        "token",
        "--token is the token a client sends; `serve` takes its admin token from the environment variable named by `admin_token_env` in crier.toml (default CRIER_ADMIN_TOKEN), or else generates <data>/admin.token on its first start",
    ),
    (
        "json",
        "--json formats a client's answers; `serve` only logs (set RUST_LOG to choose how much)",
    ),
];

#[derive(Parser, Debug)]
#[command(name = "crier", version, about = "Crisis status-update broadcaster", long_about = None)]
pub struct Cli {
    /// The crier server to talk to, with its scheme, e.g. http://127.0.0.1:8080.
    #[arg(
        long,
        global = true,
        env = "CRIER_URL",
        default_value = "http://127.0.0.1:8080",
        help_heading = CLIENT_OPTIONS
    )]
    url: String,
    /// API token; defaults to the one `crier login` saved for --url, else <data>/admin.token.
    #[arg(
        long,
        global = true,
        env = "CRIER_TOKEN",
        hide_env_values = true,
        help_heading = CLIENT_OPTIONS
    )]
    token: Option<String>,
    /// Data directory (the server's store and admin token).
    #[arg(long, global = true, env = "CRIER_DATA")]
    data: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true, help_heading = CLIENT_OPTIONS)]
    json: bool,
    #[command(subcommand)]
    command: Command,
    /// The CLI's one clock, read wherever it needs "now" (offline previews, fire times, the
    /// static export, credential checks, the wait before a delivery's next attempt): the
    /// system's wall clock, built once when the arguments are read.
    #[arg(skip = crate::dispatch::Clock::wall())]
    clock: crate::dispatch::Clock,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: the store, the API, the dispatcher and the scheduler.
    Serve(ServeArgs),
    /// Open, update, resolve, reopen, list and show incidents.
    #[command(subcommand)]
    Incident(IncidentCmd),
    /// List components or set a component's status.
    #[command(subcommand)]
    Component(ComponentCmd),
    /// Manage email and SMS subscribers.
    #[command(subcommand)]
    Subscribers(SubscribersCmd),
    /// Recurring notices (`notice next` computes fire times offline).
    #[command(subcommand)]
    Notice(NoticeCmd),
    /// Incident templates: canned titles and messages per language (list, show, add, edit,
    /// remove; writing needs a publisher).
    #[command(subcommand)]
    Templates(templates::TemplatesCmd),
    /// Delivery status of an incident (`--follow` shows progress bars until every delivery is
    /// final), or `deliveries retry ID` to requeue its dead deliveries.
    Deliveries(DeliveriesArgs),
    /// Show exactly what a channel kind would send: every part with its length, the limit,
    /// and for SMS the encoding and segments. With --message it works offline.
    Preview(PreviewArgs),
    /// Report an alert from monitoring: firing opens or appends to the incident of its
    /// (source, key); resolved resolves it when all of its keys have. Exit 0 handled,
    /// 2 usage, 3 rejected, 4 server unreachable (after --retry attempts).
    Trigger(TriggerArgs),
    /// Configured channels: `channels check [NAME]` verifies credentials with each platform
    /// without posting (offline: reads the channels folder and the environment).
    #[command(subcommand)]
    Channels(ChannelsCmd),
    /// Manage users (admins): add, list, set-role, disable, enable, remove, reset-password.
    #[command(subcommand)]
    Users(users::UsersCmd),
    /// Personal API tokens: create (shown once), list, revoke.
    #[command(subcommand)]
    Tokens(users::TokensCmd),
    /// Sign in: keeps a personal token in ~/.config/crier/login.json (mode 0600) that client
    /// commands then use.
    Login(users::LoginArgs),
    /// Sign out: revokes the saved token and deletes it.
    Logout,
    /// Your TOTP second factor: enrol (secret and recovery codes shown once), confirm,
    /// disable.
    Totp(totp::TotpArgs),
    /// Change your own password.
    Password(users::PasswordArgs),
    /// The audit log (`--json`: JSON lines); `audit verify` checks its hash chain.
    Audit(users::AuditArgs),
    /// Two-person approval: list writes waiting for a second person, approve or reject them.
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCmd),
    /// Save a consistent snapshot of the running server's whole store to FILE (one file with
    /// a SHA-256 checksum; writes pause while it is taken). --offline reads the store in
    /// --data directly instead, when no server runs on it.
    Backup(BackupArgs),
    /// Restore a backup into the data directory --data DIR (offline, no server on DIR): checks
    /// the whole file first; refuses a non-empty DIR unless --force, which keeps the old store
    /// aside as DIR/db.replaced-<time>.
    Restore(RestoreArgs),
    /// Write the static copy of the public pages (status page, history, incident pages,
    /// assets) into DIR once, from the store in --data (offline: no server may be running on
    /// it; a running server keeps `[status_page] static_export_dir` up to date by itself).
    ExportStatic(ExportStaticArgs),
    /// The store itself: `store migrate --from DIR --to postgres://…` copies a sled store into
    /// PostgreSQL and verifies it (offline: no server may run on DIR).
    #[command(subcommand)]
    Store(store_migrate::StoreCmd),
}

#[derive(Args, Debug)]
struct ExportStaticArgs {
    /// The directory to write, e.g. /var/www/status (created if missing).
    dir: PathBuf,
    /// Config file (org name, time zone, logo; default: ./crier.toml if it exists).
    #[arg(long, env = "CRIER_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct BackupArgs {
    /// Where to save the backup, e.g. crier-2026-03-29.crb (written whole or not at all).
    file: PathBuf,
    /// Read the store in --data directly (no server may be running on it).
    #[arg(long)]
    offline: bool,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    /// The backup file (from `crier backup` or a scheduled crier-backup-*.crb).
    file: PathBuf,
    /// Restore into a non-empty --data directory: its store is moved aside, not deleted.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct TriggerArgs {
    /// The monitoring system, e.g. nagios or prometheus-prod.
    #[arg(long)]
    source: String,
    /// The alert's identity within its source, e.g. disk-full-db1.
    #[arg(long)]
    key: String,
    /// Alerts of one group share one incident (default: the key).
    #[arg(long)]
    group: Option<String>,
    /// The alert's state: firing or resolved.
    #[arg(long)]
    status: String,
    /// What is wrong, in words the public may read.
    #[arg(long)]
    summary: String,
    /// Incident title (default: the summary).
    #[arg(long)]
    title: Option<String>,
    /// Impact: none, minor, major or critical (default: from the routing rules).
    #[arg(long)]
    impact: Option<String>,
    /// Affected component (repeatable; default: from the routing rules).
    #[arg(long = "component")]
    components: Vec<String>,
    /// A label for the routing rules, KEY=VALUE (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Try again this many times (backing off from 200 ms) while the server is unreachable.
    #[arg(long, default_value_t = 0)]
    retry: u32,
}

#[derive(Subcommand, Debug)]
enum ChannelsCmd {
    /// Verify each channel's credentials against its platform, without posting. Exits 1 if
    /// any check fails.
    Check {
        /// Only this channel (its file name without .toml).
        name: Option<String>,
        /// Channel definitions (default: the config's, ./channels).
        #[arg(long, env = "CRIER_CHANNELS")]
        channels: Option<PathBuf>,
        /// Config file (for its channels_dir).
        #[arg(long, env = "CRIER_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum NoticeCmd {
    /// Add a recurring notice.
    Add {
        /// Five fields: minute hour day-of-month month day-of-week, e.g. "0 9 * * Mon-Fri".
        #[arg(long)]
        cron: String,
        /// IANA time zone the expression is read in, e.g. Europe/Helsinki.
        #[arg(long)]
        tz: String,
        /// The template event (only `notice`).
        #[arg(long, default_value = "notice")]
        event: String,
        /// The notice's text.
        #[arg(long)]
        message: String,
        /// Subject (email) and title.
        #[arg(long)]
        subject: Option<String>,
        /// Language of the text, e.g. fi (default en).
        #[arg(long)]
        locale: Option<String>,
        /// Channel to send on (repeatable, at least one).
        #[arg(long = "channel", required = true)]
        channels: Vec<String>,
        /// First day it may fire, YYYY-MM-DD (local).
        #[arg(long)]
        from: Option<String>,
        /// Last day it may fire, YYYY-MM-DD (local).
        #[arg(long)]
        until: Option<String>,
    },
    /// List notices, each with its next 5 fire times (local and UTC).
    List,
    /// Remove a notice.
    Remove {
        /// The notice's id (see `notice list`).
        id: String,
    },
    /// The next fire times of a crontab(5) expression in a time zone (offline).
    Next {
        /// Five fields: minute hour day-of-month month day-of-week (1-5 = Monday-Friday).
        #[arg(long)]
        cron: String,
        /// IANA time zone the expression is read in, e.g. Europe/Helsinki.
        #[arg(long)]
        tz: String,
        /// Start after this instant (RFC 3339, e.g. 2026-03-29T00:00:00Z; default now).
        #[arg(long)]
        after: Option<String>,
        /// How many fire times to show (1-1000).
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
}

#[derive(Args, Debug)]
struct DeliveriesArgs {
    /// The incident id, or `retry` followed by the incident id (requeues its dead deliveries).
    #[arg(value_name = "ID | retry ID")]
    args: Vec<String>,
    /// Keep showing progress until every delivery is final.
    #[arg(long)]
    follow: bool,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["incident", "message"])))]
struct PreviewArgs {
    /// Preview the latest update of this incident (asks the server).
    #[arg(long)]
    incident: Option<String>,
    /// Preview this text as an update (offline: no server needed).
    #[arg(long)]
    message: Option<String>,
    /// Offline: the incident title to preview with (default: a sample, labelled as one).
    #[arg(long, requires = "message")]
    title: Option<String>,
    /// Offline: promise the next update in this long, e.g. 30m or 1h (default: no promise).
    #[arg(long, requires = "message")]
    next_update: Option<String>,
    /// sms, x, mastodon, bluesky, telegram, discord, slack, teams, matrix, facebook or email.
    #[arg(long, required_unless_present = "channel", conflicts_with = "channel")]
    kind: Option<String>,
    /// A configured channel (asks the server): its platform, templates, locale and policy.
    #[arg(long)]
    channel: Option<String>,
    /// Reader's language (falls back to en).
    #[arg(long)]
    locale: Option<String>,
    /// The template event: incident_opened, incident_updated, incident_resolved,
    /// maintenance_scheduled, maintenance_started or maintenance_completed (default: from the
    /// update).
    #[arg(long)]
    event: Option<String>,
    /// IANA zone for times, e.g. Europe/Helsinki (default: the config's timezone).
    #[arg(long)]
    tz: Option<String>,
    /// SMS segment cap: the most segments one message may cost.
    #[arg(long, default_value_t = 3)]
    sms_segments: usize,
    /// Templates folder for offline previews (default: the config's, ./templates).
    #[arg(long, env = "CRIER_TEMPLATES")]
    templates: Option<PathBuf>,
    /// Config file for offline previews (org name, public URL, time zone).
    #[arg(long, env = "CRIER_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Listen address, e.g. 127.0.0.1:8080 or 0.0.0.0:8080.
    #[arg(long, env = "CRIER_BIND")]
    bind: Option<String>,
    /// Channel definitions (one TOML file per channel).
    #[arg(long, env = "CRIER_CHANNELS")]
    channels: Option<PathBuf>,
    /// Message templates folder.
    #[arg(long, env = "CRIER_TEMPLATES")]
    templates: Option<PathBuf>,
    /// Config file (default: ./crier.toml if it exists).
    #[arg(long, env = "CRIER_CONFIG")]
    config: Option<PathBuf>,
    /// The store: a PostgreSQL URL without password (postgres://USER@HOST:PORT/DB; the password
    /// comes from CRIER_PG_PASSWORD or the config's [postgres] password_env), or "sled" for the
    /// embedded store in --data (the default).
    #[arg(long, env = "CRIER_STORE")]
    store: Option<String>,
}

#[derive(Subcommand, Debug)]
enum IncidentCmd {
    /// Open an incident (published at once unless --draft).
    Open {
        /// One-line headline (repeatable): the one without a prefix is the main title, e.g.
        /// "Check-in delays at HEL"; `fi:TEXT`, `sv:TEXT`, `en:TEXT` give it in that language, e.g.
        /// --title fi:"Lähtöselvitys viivästyy". Readers of a language without one see the main title.
        #[arg(long, required = true)]
        title: Vec<String>,
        /// How badly users are affected: none, minor, major or critical.
        #[arg(long)]
        impact: String,
        /// Affected component (repeatable), e.g. --component Check-in --component "Mobile app".
        #[arg(long = "component")]
        components: Vec<String>,
        /// Promise the next update in this long, e.g. 30m or 1h.
        #[arg(long, value_parser = promise_arg)]
        next_update: Option<String>,
        /// Keep it as a draft: not public, notifies nobody, until `incident publish`.
        #[arg(long)]
        draft: bool,
        /// Open a planned maintenance instead of an incident.
        #[arg(long)]
        maintenance: bool,
        /// Promise the next update at a time of day, e.g. 14:00, in the organisation's time zone
        /// (`timezone` in crier.toml; `serve` names it at start-up): today's, or tomorrow's if
        /// today's has passed.
        #[arg(long, conflicts_with = "next_update")]
        next_update_at: Option<String>,
        /// Post an automatic holding statement if a promised update is missed.
        #[arg(long)]
        holding_statement: bool,
        /// Maintenance window start (RFC 3339, e.g. 2026-03-29T22:00:00Z); crier moves it to
        /// in_progress then.
        #[arg(long, requires = "scheduled_until")]
        scheduled_for: Option<String>,
        /// Maintenance window end (RFC 3339, e.g. 2026-03-30T02:00:00Z); crier completes it then.
        #[arg(long, requires = "scheduled_for")]
        scheduled_until: Option<String>,
        /// Remind the maintenance's audience this long before the window starts (30m, 2h, 1d;
        /// up to 7d), or `none` for no reminder. Default: the server's `maintenance.remind_before`.
        #[arg(long, requires = "scheduled_for")]
        remind_before: Option<String>,
        #[command(flatten)]
        text: texts::TextArgs,
        #[command(flatten)]
        glass: approvals::Glass,
    },
    /// Post an update to an incident's timeline.
    Update {
        /// The incident's id (26 characters, see `incident list`).
        id: String,
        /// New status: investigating, identified, monitoring or resolved (maintenance:
        /// scheduled, in_progress, verifying or completed); any case.
        #[arg(long)]
        status: String,
        /// Add or change the title in a language (repeatable): `fi:TEXT`, `sv:TEXT` or `en:TEXT`,
        /// e.g. --title sv:"Incheckningen är försenad". The main title and other languages stay.
        #[arg(long)]
        title: Vec<String>,
        /// Promise the next update in this long, e.g. 30m or 1h (without it, or --next-update-at,
        /// the standing promise is kept).
        #[arg(long, value_parser = promise_arg)]
        next_update: Option<String>,
        /// Change the impact: none, minor, major or critical.
        #[arg(long)]
        impact: Option<String>,
        /// Keep it as a draft: not public, notifies nobody, until `incident publish`.
        #[arg(long)]
        draft: bool,
        /// Promise the next update at a time of day, e.g. 14:00, in the organisation's time zone
        /// (`timezone` in crier.toml; `serve` names it at start-up): today's, or tomorrow's if
        /// today's has passed.
        #[arg(long, conflicts_with = "next_update")]
        next_update_at: Option<String>,
        /// Withdraw the standing promise of a next update. Without this, --next-update or
        /// --next-update-at, the standing promise is kept (the answer says if it had passed).
        #[arg(long, conflicts_with_all = ["next_update", "next_update_at"])]
        no_next_update: bool,
        /// When this update resolves: leave the affected components' statuses as they are.
        #[arg(long)]
        keep_components: bool,
        #[command(flatten)]
        text: texts::TextArgs,
        #[command(flatten)]
        glass: approvals::Glass,
    },
    /// Resolve an incident (or complete a maintenance). Its components go back to operational
    /// unless another open incident still affects them (or --keep-components).
    Resolve {
        /// The incident's id (26 characters, see `incident list`).
        id: String,
        /// Leave the affected components' statuses as they are.
        #[arg(long)]
        keep_components: bool,
        #[command(flatten)]
        text: texts::TextArgs,
        #[command(flatten)]
        glass: approvals::Glass,
    },
    /// Reopen a resolved incident.
    Reopen {
        /// The incident's id (26 characters, see `incident list`).
        id: String,
        /// Promise the next update in this long, e.g. 30m or 1h.
        #[arg(long, value_parser = promise_arg)]
        next_update: Option<String>,
        #[command(flatten)]
        text: texts::TextArgs,
        #[command(flatten)]
        glass: approvals::Glass,
    },
    /// Publish an incident's draft updates.
    Publish {
        /// The incident's id (26 characters, see `incident list`).
        id: String,
        #[command(flatten)]
        glass: approvals::Glass,
    },
    /// List incidents, newest first.
    List {
        /// Only open incidents.
        #[arg(long)]
        open: bool,
        /// Show at most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Show one incident with its timeline.
    Show {
        /// The incident's id (26 characters, see `incident list`).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum ComponentCmd {
    /// List components.
    List,
    /// Create a component or set its status.
    Set {
        /// The component's name, e.g. Check-in or "Mobile app".
        name: String,
        /// operational, degraded_performance, partial_outage, major_outage or under_maintenance
        /// (any case).
        status: String,
        /// A group to show it under, e.g. Airports (kept when left out).
        #[arg(long)]
        group: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum SubscribersCmd {
    /// Add one subscriber.
    #[command(group(clap::ArgGroup::new("contact").required(true).args(["email", "phone"])))]
    Add {
        /// Email address, e.g. name@example.com.
        #[arg(long)]
        email: Option<String>,
        /// Phone number with its country code, e.g. +358401234567 or "+358 40 123 4567".
        #[arg(long)]
        phone: Option<String>,
        /// The subscriber's language, e.g. fi (default en).
        #[arg(long)]
        locale: Option<String>,
        /// Only notify about this component (repeatable; none = all).
        #[arg(long = "component")]
        components: Vec<String>,
    },
    /// Change an existing subscriber's language or components (the rest is kept).
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["locale", "components", "all_components"])))]
    Set {
        /// The subscriber's id, email or phone number.
        key: String,
        /// The new language, e.g. fi.
        #[arg(long)]
        locale: Option<String>,
        /// Only notify about this component (repeatable; replaces the list).
        #[arg(long = "component", conflicts_with = "all_components")]
        components: Vec<String>,
        /// Notify about every component (clears the list).
        #[arg(long)]
        all_components: bool,
    },
    /// Import subscribers from CSV (header: email,phone,locale,components; components separated
    /// by ';'). Bad rows are reported by line and the rest imported; exits 3 if any row was rejected.
    Import {
        /// The CSV file, e.g. subscribers.csv (comma-separated; `;` or tab is detected).
        file: PathBuf,
    },
    /// List subscribers.
    List {
        /// Show at most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Only self-service sign-ups not yet confirmed (they receive nothing until they are).
        #[arg(long)]
        pending: bool,
    },
    /// Remove a subscriber by id, email or phone number.
    Remove {
        /// The subscriber's id, email or phone number.
        key: String,
    },
}

/// The command-line definition: the derived one, with the client options hidden from `serve`,
/// which refuses them (see [`NOT_FOR_SERVE`]); they stay global so that
/// `crier --url U --token T incident list` works. `serve` gets hidden copies of them before
/// the command is built, and clap does not propagate a global argument into a subcommand that
/// has its own.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    let client: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| NOT_FOR_SERVE.iter().any(|(id, _)| a.get_id() == id))
        .cloned()
        .collect();
    for sc in cmd.get_subcommands_mut() {
        if sc.get_name() == "serve" {
            let mut serve = std::mem::take(sc);
            for a in &client {
                serve = serve.arg(a.clone().global(false).hide(true));
            }
            *sc = serve;
        }
    }
    cmd
}

/// Entry point used by the binary.
pub fn main() -> ExitCode {
    let matches = command().get_matches();
    if let Some(("serve", sub)) = matches.subcommand() {
        for (id, instead) in NOT_FOR_SERVE {
            let given = |m: &clap::ArgMatches| {
                m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
            };
            if given(&matches) || given(sub) {
                eprintln!("error: {instead}.");
                return ExitCode::from(2);
            }
        }
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Serve(ref args) => serve(&cli, args),
        _ => client_main(cli),
    }
}

fn serve(cli: &Cli, args: &ServeArgs) -> ExitCode {
    use std::io::IsTerminal;
    tune_malloc();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let overrides = Overrides {
        data_dir: cli.data.clone(),
        store: args.store.clone(),
        bind: args.bind.clone(),
        channels_dir: args.channels.clone(),
        templates_dir: args.templates.clone(),
        config_file: args.config.clone(),
        ..Default::default()
    };
    let run = async {
        let config = Config::load(&overrides)?;
        let (server, source) = Server::build(&config).await?;
        let token_path = crate::token::admin_token_path(&config.data_dir);
        match source {
            TokenSource::Env(var) => tracing::info!("admin token taken from ${var}"),
            TokenSource::File { generated: true } => tracing::info!(
                "generated an admin token in {} (mode 0600); the CLI reads it from there, other clients send it as `Authorization: Bearer <token>`",
                token_path.display()
            ),
            TokenSource::File { generated: false } => {
                tracing::info!("admin token read from {}", token_path.display())
            }
        }
        let shutdown = server::shutdown_signal()?;
        tracing::info!("{}", server.summary(&config.data_dir)?);
        server.run(shutdown).await
    };
    let rt = match runtime(tokio::runtime::Builder::new_multi_thread()) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The async runtime from `builder`, or exit 4 with the reason.
fn runtime(mut builder: tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, ExitCode> {
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::from(4)
    })
}

/// Keeps the server's memory flat during big fan-outs: glibc malloc gives each thread that
/// contends for a lock its own arena (up to 8 per core) and keeps freed memory in them, so sled's
/// copy-on-write churn left `serve` at 540 MiB peak RSS for a 1,000,000-subscriber fan-out; with
/// one arena and a 64 KiB trim threshold it peaked at 243 MiB (docs/BENCHMARKS.md, rss), and
/// with a fixed 256 KiB mmap threshold as well at ≈ 220 MiB. Each setting given in the
/// environment (`MALLOC_ARENA_MAX`, `MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_`) wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    use std::os::raw::c_int;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    const M_ARENA_MAX: c_int = -8;
    // SAFETY: mallopt only changes allocator parameters; it is called from `serve` before the
    // runtime or any other thread exists, with documented parameter numbers and valid values.
    unsafe {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            mallopt(M_ARENA_MAX, 1);
        }
        if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
            mallopt(M_TRIM_THRESHOLD, 64 * 1024);
        }
        // A fixed threshold also turns off glibc's dynamic one, which after the first large
        // buffer is freed (sled's IO buffers) raises itself up to 32 MiB and so moves such
        // buffers into the heap, where they fragment it: a 1,000,000-subscriber fan-out peaked
        // at 274 MiB with the dynamic threshold and ≈ 220 MiB with this.
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            mallopt(M_MMAP_THRESHOLD, 256 * 1024);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

/// `crier preview --message`: renders locally with the templates and settings of the config.
fn preview_offline(cli: &Cli, a: &PreviewArgs, text: &str) -> Result<(), CliError> {
    use crate::render::preview::{
        describe, parse_event, preview_text_with, Given, Platform, TextPreview,
    };
    let config = Config::load(&Overrides {
        data_dir: cli.data.clone(),
        templates_dir: a.templates.clone(),
        config_file: a.config.clone(),
        ..Default::default()
    })
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let platform =
        Platform::parse(a.kind.as_deref().unwrap_or_default()).map_err(CliError::Usage)?;
    let event = a
        .event
        .as_deref()
        .map(parse_event)
        .transpose()
        .map_err(CliError::Usage)?;
    let locale = a
        .locale
        .as_deref()
        .map(crate::domain::Locale::parse)
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let tz = match &a.tz {
        Some(t) => t.parse().map_err(|_| {
            CliError::Usage(format!(
                "--tz \"{t}\" is not an IANA time zone such as Europe/Helsinki"
            ))
        })?,
        None => config.render.timezone,
    };
    let templates = crate::render::Templates::load(&config.templates_dir, &[]).map_err(|e| {
        CliError::Usage(format!(
            "{e} (templates from {})",
            config.templates_dir.display()
        ))
    })?;
    let next_update = a
        .next_update
        .as_deref()
        .map(crate::domain::parse_next_update)
        .transpose()
        .map_err(|e| {
            let e = e.to_string();
            CliError::Usage(format!(
                "--next-update: {}",
                e.trim_start_matches("next_update: ")
            ))
        })?;
    if let Some(t) = &a.title {
        crate::domain::Title::parse(t).map_err(|e| CliError::Usage(format!("--{e}")))?;
    }
    let given = Given {
        title: a.title.as_deref(),
        next_update,
    };
    let p = preview_text_with(
        &templates,
        &config.render,
        &TextPreview {
            platform,
            event,
            text,
            locale,
            tz,
            sms_segments: a.sms_segments,
            channel: None,
            policy: None,
            channel_locale: None,
        },
        Some(&given),
        // Offline, on the operator's machine: the sample's time is this machine's own clock.
        cli.clock.now(),
    )
    .map_err(|e| CliError::Rejected(e.to_string()))?;
    if cli.json {
        output::print_json(&serde_json::to_value(&p).unwrap_or_default());
    } else {
        print!("{}", describe(&p));
    }
    Ok(())
}

/// `crier notice next`: fire times, computed locally.
fn notice_next(
    cron: &str,
    tz: &str,
    after: Option<&str>,
    count: usize,
    json_out: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), CliError> {
    let zone: chrono_tz::Tz = tz.parse().map_err(|_| {
        CliError::Usage(format!(
            "--tz \"{tz}\" is not an IANA time zone; use e.g. Europe/Helsinki, America/New_York or UTC"
        ))
    })?;
    let schedule = crate::schedule::cron::CronSchedule::parse(cron, zone)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let after = match after {
        Some(a) => chrono::DateTime::parse_from_rfc3339(a)
            .map_err(|_| {
                CliError::Usage(format!(
                    "--after \"{a}\" is not an RFC 3339 instant such as 2026-03-29T00:00:00Z"
                ))
            })?
            .with_timezone(&chrono::Utc),
        None => now,
    };
    if !(1..=1000).contains(&count) {
        return Err(CliError::Usage("--count must be 1 to 1000".into()));
    }
    let fires = schedule.upcoming(after, count);
    if json_out {
        let v = json!({
            "cron": cron,
            "tz": tz,
            "fires": fires.iter().map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).collect::<Vec<_>>(),
        });
        output::print_json(&v);
    } else {
        for t in &fires {
            println!(
                "{}   {}",
                t.with_timezone(&zone).format("%a %Y-%m-%d %H:%M %Z"),
                t.format("%Y-%m-%dT%H:%M:%SZ")
            );
        }
    }
    Ok(())
}

/// `crier export-static DIR`: offline, from the store in --data.
fn export_static(
    data: Option<&std::path::Path>,
    a: &ExportStaticArgs,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, CliError> {
    let config = Config::load(&Overrides {
        data_dir: data.map(std::path::Path::to_path_buf),
        config_file: a.config.clone(),
        ..Default::default()
    })
    .map_err(|e| CliError::Usage(e.to_string()))?;
    // The store's flusher runs on tokio.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Unavailable(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let store = crate::store::Store::open(&config.data_dir.join("db")).map_err(|e| {
            CliError::Unavailable(format!(
                "{e} (while `crier serve` runs, set [status_page] static_export_dir and it writes the copy itself on every change)"
            ))
        })?;
        let source = crate::web::export::Source {
            store: &store,
            settings: &config.render,
            public: &config.public,
            now,
        };
        crate::web::export::export(&a.dir, &source)
            .await
            .map_err(|e| CliError::Unavailable(e.to_string()))
    })
}

/// `crier channels check`: offline, with its own runtime.
fn channels_check(
    cli: &Cli,
    name: Option<&str>,
    channels: Option<&PathBuf>,
    config: Option<&PathBuf>,
) -> ExitCode {
    let fail = |e: CliError| {
        eprintln!("error: {e}");
        ExitCode::from(e.exit_code())
    };
    let dir = match Config::load(&Overrides {
        data_dir: cli.data.clone(),
        channels_dir: channels.cloned(),
        config_file: config.cloned(),
        ..Default::default()
    }) {
        Ok(c) => c.channels_dir,
        Err(e) => return fail(CliError::Usage(e.to_string())),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(CliError::Unavailable(format!(
                "cannot start the async runtime: {e}"
            )))
        }
    };
    let checks = match rt.block_on(check::check_channels(&dir, name, cli.clock)) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let ok = check::passed(&checks, name);
    if cli.json {
        output::print_json(&check::to_json(&checks, ok));
    } else {
        print!("{}", check::describe(&checks));
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn client_main(cli: Cli) -> ExitCode {
    if let Command::Channels(ChannelsCmd::Check {
        name,
        channels,
        config,
    }) = &cli.command
    {
        return channels_check(&cli, name.as_deref(), channels.as_ref(), config.as_ref());
    }
    if let Command::Notice(NoticeCmd::Next {
        cron,
        tz,
        after,
        count,
    }) = &cli.command
    {
        let now = cli.clock.now();
        return match notice_next(cron, tz, after.as_deref(), *count, cli.json, now) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    if let Command::Restore(a) = &cli.command {
        return match backup::restore(cli.data.as_deref(), &a.file, a.force, cli.json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    if let Command::Store(cmd) = &cli.command {
        return store_migrate::main(cmd, cli.json);
    }
    if let Command::ExportStatic(a) = &cli.command {
        return match export_static(cli.data.as_deref(), a, cli.clock.now()) {
            Ok(n) => {
                println!("wrote {n} changed files to {}", a.dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    if let Some(code) = team_main(&cli) {
        return code;
    }
    if let Command::Preview(a) = &cli.command {
        if let (Some(text), None) = (&a.message, &a.channel) {
            return match preview_offline(&cli, a, text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(e.exit_code())
                }
            };
        }
    }
    let rt = match runtime(tokio::runtime::Builder::new_current_thread()) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(run_client(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `login`, `logout` and `audit verify`, which need no token of their own (or may work
/// offline); `None` for every other command.
fn team_main(cli: &Cli) -> Option<ExitCode> {
    let run = async {
        match &cli.command {
            Command::Login(a) => {
                let a = a.clone();
                users::login(&cli.url, a, cli.json).await.map(|()| true)
            }
            Command::Logout => users::logout(&cli.url).await.map(|()| true),
            Command::Totp(a) if a.cmd.signs_in() => totp::enrol_signing_in(&cli.url, &a.cmd)
                .await
                .map(|()| true),
            Command::Audit(a) if a.is_verify() => {
                let data = cli.data.clone().unwrap_or_else(|| PathBuf::from("./data"));
                let (verdict, offline) = match users::verify_offline(&data).await? {
                    Some(v) => (v, true),
                    None => {
                        let client = Client::new(&cli.url, Some(token(cli)?))?;
                        (users::verify_online(&client).await?, false)
                    }
                };
                Ok(users::report(&verdict, offline, cli.json))
            }
            _ => Ok(true),
        }
    };
    if !matches!(cli.command, Command::Login(_) | Command::Logout)
        && !matches!(&cli.command, Command::Audit(a) if a.is_verify())
        && !matches!(&cli.command, Command::Totp(a) if a.cmd.signs_in())
    {
        return None;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Some(ExitCode::from(4));
        }
    };
    Some(match rt.block_on(run) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    })
}

/// The token a client command sends: --token or $CRIER_TOKEN, else the one `crier login`
/// saved for this server, else the bootstrap admin token in <data>/admin.token.
fn token(cli: &Cli) -> Result<String, CliError> {
    if let Some(t) = &cli.token {
        return Ok(t.clone());
    }
    if let Some(t) = users::saved_token(&cli.url) {
        return Ok(t);
    }
    let data = cli.data.clone().unwrap_or_else(|| PathBuf::from("./data"));
    match crate::token::read_admin_token(&data) {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(CliError::Usage(format!(
            "no API token: run `crier login`, pass --token, set CRIER_TOKEN, or point --data at the server's data directory (no {} found)",
            crate::token::admin_token_path(&data).display()
        ))),
        Err(e) => Err(CliError::Usage(e.to_string())),
    }
}

/// `--next-update`: checked here with the server's own rules (a delay such as 30m, or an RFC 3339
/// instant), so a typo is a usage error before anything is sent.
fn promise_arg(s: &str) -> Result<String, String> {
    if chrono::DateTime::parse_from_rfc3339(s.trim()).is_err() {
        crate::domain::parse_next_update(s).map_err(|e| e.to_string())?;
    }
    Ok(s.to_owned())
}

fn enc(s: &str) -> String {
    crate::percent::encode(s)
}

async fn run_client(cli: Cli) -> Result<(), CliError> {
    if let Command::Backup(a) = &cli.command {
        if a.offline {
            let data = cli.data.clone().unwrap_or_else(|| PathBuf::from("./data"));
            return backup::backup_offline(&data, &a.file, a.force, cli.json).await;
        }
    }
    let client = Client::new(&cli.url, Some(token(&cli)?))?;
    let (json_out, clock) = (cli.json, cli.clock);
    match cli.command {
        Command::Serve(_) => Err(CliError::Usage("serve is not a client command".into())),
        Command::Incident(cmd) => incident(&client, cmd, json_out).await,
        Command::Component(cmd) => component(&client, cmd, json_out).await,
        Command::Subscribers(cmd) => subscribers(&client, cmd, json_out).await,
        Command::Deliveries(a) => deliveries(&client, a, json_out, clock).await,
        Command::Notice(NoticeCmd::Next { .. })
        | Command::Channels(_)
        | Command::Restore(_)
        | Command::ExportStatic(_)
        | Command::Store(_) => Ok(()),
        Command::Backup(a) => backup::backup_online(&client, &a.file, a.force, json_out).await,
        Command::Login(_) | Command::Logout => Ok(()),
        Command::Totp(a) => totp::totp(&client, a.cmd).await,
        Command::Users(cmd) => users::users(&client, cmd, json_out).await,
        Command::Tokens(cmd) => users::tokens(&client, cmd, json_out).await,
        Command::Password(a) => users::password(&client, a).await,
        Command::Audit(a) => users::audit(&client, a, json_out).await,
        Command::Approvals(cmd) => approvals::approvals(&client, cmd, json_out).await,
        Command::Notice(cmd) => notice(&client, cmd, json_out).await,
        Command::Templates(cmd) => templates::templates(&client, cmd, json_out).await,
        Command::Trigger(a) => trigger(&client, a, json_out).await,
        Command::Preview(a) => {
            let body = PreviewBody {
                kind: a.kind.clone(),
                sms_segments: a.channel.is_none().then_some(a.sms_segments),
                channel: a.channel.clone(),
                incident: a.incident.clone(),
                message: a.message.clone(),
                locale: a.locale.clone(),
                event: a.event.clone(),
                tz: a.tz.clone(),
                ..PreviewBody::default()
            };
            let v = c_preview(&client, body).await?;
            if json_out {
                output::print_json(&v);
            } else {
                let p: crate::render::preview::Preview =
                    serde_json::from_value(v).map_err(|e| {
                        CliError::Unavailable(format!("unexpected preview answer: {e}"))
                    })?;
                print!("{}", crate::render::preview::describe(&p));
            }
            Ok(())
        }
    }
}

async fn notice(c: &Client, cmd: NoticeCmd, json_out: bool) -> Result<(), CliError> {
    match cmd {
        NoticeCmd::Next { .. } => Ok(()),
        NoticeCmd::Add {
            cron,
            tz,
            event,
            message,
            subject,
            locale,
            channels,
            from,
            until,
        } => {
            let body = Body::json(&NewNotice {
                cron,
                tz,
                event: Some(event),
                subject,
                message: Some(message),
                locale,
                body: None,
                channels,
                from,
                until,
            })?;
            let path = "/api/v1/notices";
            shown_as(
                c,
                Method::POST,
                path,
                Some(body),
                json_out,
                |n: NoticeView| output::notices(&[n], true),
            )
            .await
        }
        NoticeCmd::List => {
            let path = "/api/v1/notices";
            shown_as(
                c,
                Method::GET,
                path,
                None,
                json_out,
                |l: Vec<NoticeView>| output::notices(&l, false),
            )
            .await
        }
        NoticeCmd::Remove { id } => {
            let path = format!("/api/v1/notices/{}", enc(&id));
            shown_as(c, Method::DELETE, &path, None, json_out, |n: Notice| {
                println!("Removed notice {}", n.id)
            })
            .await
        }
    }
}

async fn trigger(c: &Client, a: TriggerArgs, json_out: bool) -> Result<(), CliError> {
    let mut labels = std::collections::BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').ok_or_else(|| {
            CliError::Usage(format!(
                "--label {l}: write KEY=VALUE, e.g. --label severity=critical"
            ))
        })?;
        labels.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    let doc = crate::intake::payloads::TriggerDoc {
        source: a.source,
        key: a.key,
        group: a.group,
        status: a.status,
        summary: a.summary,
        title: a.title,
        impact: a.impact,
        components: a.components,
        labels,
    };
    let path = "/api/v1/triggers";
    let mut delay = std::time::Duration::from_millis(200);
    let mut attempt = 0;
    let (v, reply) = loop {
        match c
            .call_as::<IntakeReply>(Method::POST, path, Some(Body::json(&doc)?))
            .await
        {
            Err(CliError::Unavailable(why)) if attempt < a.retry => {
                attempt += 1;
                eprintln!(
                    "crier is unavailable ({why}); retry {attempt} of {} in {delay:?}",
                    a.retry
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
            other => break other?,
        }
    };
    output::trigger(&v, &reply, json_out);
    Ok(())
}

async fn deliveries(
    c: &Client,
    a: DeliveriesArgs,
    json_out: bool,
    clock: crate::dispatch::Clock,
) -> Result<(), CliError> {
    let usage = || {
        CliError::Usage("usage: crier deliveries ID [--follow] | crier deliveries retry ID".into())
    };
    match a.args.as_slice() {
        [cmd, id] if cmd == "retry" => {
            let path = format!("/api/v1/incidents/{}/deliveries/retry", enc(id));
            shown_as(c, Method::POST, &path, None, json_out, |r: Requeued| {
                println!("Requeued {} dead deliveries.", r.requeued)
            })
            .await
        }
        [id] => {
            let path = format!("/api/v1/incidents/{}/deliveries", enc(id));
            if !a.follow {
                let (v, st) = c.call_as(Method::GET, &path, None).await?;
                output::delivery_status(&v, &st, json_out, clock.now());
                return Ok(());
            }
            let mut bars = output::DeliveryBars::new(json_out);
            loop {
                let asked = std::time::Instant::now();
                let (v, st): (_, Status) = c.call_as(Method::GET, &path, None).await?;
                bars.update(&st);
                if st.complete {
                    bars.finish(&v, &st, clock.now());
                    return Ok(());
                }
                // Every poll makes the server count all of the incident's deliveries: with a
                // big audience, poll less often than the count takes, so watching never costs
                // the fan-out more than a third of a core.
                let pause = (asked.elapsed() * 2).max(std::time::Duration::from_millis(300));
                tokio::time::sleep(pause).await;
            }
        }
        _ => Err(usage()),
    }
}

async fn c_preview(c: &Client, body: PreviewBody) -> Result<Value, CliError> {
    c.call(Method::POST, "/api/v1/preview", Some(Body::json(&body)?))
        .await
}

/// Posts one incident write: a write held for a second person's approval is printed as held
/// (nothing was sent), anything else by `written`.
async fn write_incident<T: serde::de::DeserializeOwned>(
    c: &Client,
    path: &str,
    body: Option<Body>,
    json_out: bool,
    written: impl FnOnce(&T),
) -> Result<(), CliError> {
    let v = c.call(Method::POST, path, body).await?;
    if let Some(a) = approvals::held_approval(path, &v)? {
        approvals::held(&v, &a, json_out);
    } else if json_out {
        output::print_json(&v);
    } else {
        written(&client::answer_as::<T>(path, &v)?);
    }
    Ok(())
}

/// Posts an update, a resolution or a reopening (`action`) to incident `id`.
/// Translations by locale as the API's requests take them; none is `None`.
fn locale_map(
    titles: std::collections::BTreeMap<Locale, String>,
) -> Option<std::collections::BTreeMap<String, String>> {
    (!titles.is_empty()).then(|| {
        titles
            .into_iter()
            .map(|(l, t)| (l.to_string(), t))
            .collect()
    })
}

async fn post_to_incident(
    c: &Client,
    id: &str,
    action: &str,
    body: Body,
    json_out: bool,
) -> Result<(), CliError> {
    let path = format!("/api/v1/incidents/{}/{action}", enc(id));
    write_incident(c, &path, Some(body), json_out, output::posted).await
}

async fn incident(c: &Client, cmd: IncidentCmd, json_out: bool) -> Result<(), CliError> {
    match cmd {
        IncidentCmd::Open {
            title,
            impact,
            components,
            next_update,
            draft,
            maintenance,
            next_update_at,
            holding_statement,
            scheduled_for,
            scheduled_until,
            remind_before,
            text,
            glass,
        } => {
            let (main, titles) = texts::title_fields(&title, true)?;
            let text = text.fields()?;
            let kind = match maintenance || scheduled_for.is_some() {
                true => IncidentKind::Maintenance,
                false => IncidentKind::Incident,
            };
            // The window goes with both ends or not at all.
            let (scheduled_for, scheduled_until) = match (scheduled_for, scheduled_until) {
                (Some(f), Some(u)) => (Some(f), Some(u)),
                _ => (None, None),
            };
            let req = CreateIncident {
                title: main.unwrap_or_default(),
                titles: locale_map(titles),
                kind,
                impact: Some(impact),
                components,
                next_update,
                next_update_at,
                draft,
                message: text.message,
                locale: text.locale,
                body: text.body,
                scheduled_for,
                scheduled_until,
                remind_before,
                holding_statement,
                break_glass: glass.break_glass,
                reason: glass.reason,
                ..CreateIncident::default()
            };
            write_incident(
                c,
                "/api/v1/incidents",
                Some(Body::json(&req)?),
                json_out,
                |v: &IncidentView| output::incident_written(v, "Opened"),
            )
            .await?;
        }
        IncidentCmd::Update {
            id,
            status,
            title,
            next_update,
            impact,
            draft,
            next_update_at,
            no_next_update,
            keep_components,
            text,
            glass,
        } => {
            let (_, titles) = texts::title_fields(&title, false)?;
            let text = text.fields()?;
            let req = PostUpdate {
                status: Some(status),
                titles: locale_map(titles),
                impact,
                next_update,
                next_update_at,
                clear_next_update: no_next_update,
                draft,
                message: text.message,
                locale: text.locale,
                body: text.body,
                keep_components,
                component_statuses: Vec::new(),
                break_glass: glass.break_glass,
                reason: glass.reason,
            };
            post_to_incident(c, &id, "updates", Body::json(&req)?, json_out).await?;
        }
        IncidentCmd::Resolve {
            id,
            keep_components,
            text,
            glass,
        } => {
            let text = text.fields()?;
            let req = Transition {
                message: text.message,
                locale: text.locale,
                body: text.body,
                keep_components,
                break_glass: glass.break_glass,
                reason: glass.reason,
                ..Transition::default()
            };
            post_to_incident(c, &id, "resolve", Body::json(&req)?, json_out).await?;
        }
        IncidentCmd::Reopen {
            id,
            next_update,
            text,
            glass,
        } => {
            let text = text.fields()?;
            let req = Transition {
                next_update,
                message: text.message,
                locale: text.locale,
                body: text.body,
                break_glass: glass.break_glass,
                reason: glass.reason,
                ..Transition::default()
            };
            post_to_incident(c, &id, "reopen", Body::json(&req)?, json_out).await?;
        }
        IncidentCmd::Publish { id, glass } => {
            write_incident(
                c,
                &format!("/api/v1/incidents/{}/publish{}", enc(&id), glass.query()),
                None,
                json_out,
                |v: &IncidentView| output::incident_written(v, "Published"),
            )
            .await?;
        }
        IncidentCmd::List { open, limit } => {
            let mut path = format!("/api/v1/incidents?limit={limit}");
            if open {
                path.push_str("&open=true");
            }
            let (v, items): (_, Vec<IncidentView>) = c.call_as(Method::GET, &path, None).await?;
            output::incident_list(&v, &items, json_out);
        }
        IncidentCmd::Show { id } => {
            let path = format!("/api/v1/incidents/{}", enc(&id));
            let show = |d: IncidentDetail| output::incident_detail(&d);
            shown_as(c, Method::GET, &path, None, json_out, show).await?;
        }
    }
    Ok(())
}

async fn component(c: &Client, cmd: ComponentCmd, json_out: bool) -> Result<(), CliError> {
    match cmd {
        ComponentCmd::List => {
            let path = "/api/v1/components";
            shown_as(c, Method::GET, path, None, json_out, output::component_list).await?;
        }
        ComponentCmd::Set {
            name,
            status,
            group,
        } => {
            let body = Some(Body::json(&SetComponent { status, group })?);
            let path = format!("/api/v1/components/{}", enc(&name));
            shown_as(c, Method::PUT, &path, body, json_out, output::component_set).await?;
        }
    }
    Ok(())
}

async fn subscribers(c: &Client, cmd: SubscribersCmd, json_out: bool) -> Result<(), CliError> {
    match cmd {
        SubscribersCmd::Add {
            email,
            phone,
            locale,
            components,
        } => {
            let body = Some(Body::json(&AddSubscriber {
                email,
                phone,
                locale,
                components,
            })?);
            let path = "/api/v1/subscribers";
            shown_as(
                c,
                Method::POST,
                path,
                body,
                json_out,
                output::subscriber_added,
            )
            .await?;
        }
        SubscribersCmd::Import { file } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let (v, report): (_, ImportReport) = c
                .call_as(
                    Method::POST,
                    "/api/v1/subscribers/import",
                    Some(Body::Csv(bytes)),
                )
                .await?;
            let rejected = report.rejected;
            output::import_report(&v, &report, json_out);
            if rejected > 0 {
                return Err(CliError::Rejected(format!(
                    "{rejected} row(s) of {} were rejected (listed above); fix them and import the file again — rows already imported are skipped as duplicates",
                    file.display()
                )));
            }
        }
        SubscribersCmd::List { limit, pending } => {
            let filter = if pending { "&pending=true" } else { "" };
            let (v, items): (_, Vec<SubscriberView>) = c
                .call_as(
                    Method::GET,
                    &format!("/api/v1/subscribers?limit={limit}{filter}"),
                    None,
                )
                .await?;
            output::subscriber_list(&v, &items, json_out);
        }
        SubscribersCmd::Set {
            key,
            locale,
            components,
            all_components,
        } => {
            let components = if all_components {
                Some(Vec::new())
            } else if !components.is_empty() {
                Some(components)
            } else {
                None
            };
            let body = Some(Body::json(&ChangeSubscriber { locale, components })?);
            let path = format!("/api/v1/subscribers/{}", enc(&key));
            let show = output::subscriber_changed;
            shown_as(c, Method::PATCH, &path, body, json_out, show).await?;
        }
        SubscribersCmd::Remove { key } => {
            let path = format!("/api/v1/subscribers/{}", enc(&key));
            let show = output::subscriber_removed;
            shown_as(c, Method::DELETE, &path, None, json_out, show).await?;
        }
    }
    Ok(())
}

/// One request whose answer, read as the API's type `T`, `human` prints; with `--json` the
/// answer as it came.
async fn shown_as<T: serde::de::DeserializeOwned>(
    c: &Client,
    method: Method,
    path: &str,
    body: Option<Body>,
    json_out: bool,
    human: impl FnOnce(T),
) -> Result<(), CliError> {
    let (v, t) = c.call_as::<T>(method, path, body).await?;
    if json_out {
        output::print_json(&v);
    } else {
        human(t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of every subcommand says what it is for (`--help` reads as a manual).
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" || a.is_hide_set() {
                    continue;
                }
                if a.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sc in cmd.get_subcommands() {
                if sc.get_name() == "help" {
                    continue;
                }
                if sc.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sc.get_name()));
                }
                walk(sc, &format!("{path} {}", sc.get_name()), missing);
            }
        }
        let mut cmd = command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "crier", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }

    /// `serve` neither shows nor needs the client options; everything else shows them under
    /// their own heading.
    #[test]
    fn client_options_are_hidden_from_serve_only() {
        let mut cmd = command();
        cmd.build();
        for sc in cmd.get_subcommands() {
            for (id, _) in NOT_FOR_SERVE {
                let Some(a) = sc.get_arguments().find(|a| a.get_id() == id) else {
                    continue;
                };
                if sc.get_name() == "serve" {
                    assert!(a.is_hide_set(), "serve shows --{id}");
                    assert!(!a.is_global_set());
                } else {
                    assert!(!a.is_hide_set(), "{} hides --{id}", sc.get_name());
                    assert_eq!(a.get_help_heading(), Some(CLIENT_OPTIONS));
                }
            }
        }
        let serve = cmd
            .find_subcommand_mut("serve")
            .map(|s| s.render_help().to_string());
        let help = serve.unwrap_or_default();
        assert!(help.contains("--bind"), "{help}");
        for flag in ["--url", "--token", "--json"] {
            assert!(!help.contains(flag), "serve --help lists {flag}:\n{help}");
        }
    }
}
