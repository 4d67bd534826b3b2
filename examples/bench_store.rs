//! Benchmark: the delivery engine's store work alone, in process — expanding a broadcast into
//! deliveries, then claiming them and recording their outcomes — with no HTTP, no rendering and
//! no provider. It separates what sled costs per delivery from what the fan-out benchmark
//! (`bench_fanout`) measures end to end.
//!
//! ```text
//! cargo run --release --example bench_store
//! cargo run --release --example bench_store -- --subscribers 200000 --claim 256
//! ```
//!
//! Steps, on a fresh store in a temporary dir (the same `Store::open` as `crier serve`):
//! 1. import the subscribers (5,000 per transaction; not timed);
//! 2. open an incident with one subscriber channel (`sms`);
//! 3. expand its broadcast in the dispatcher's batches (1,000 subscribers, each batch durable):
//!    deliveries/s of expansion;
//! 4. claim `--claim` deliveries at a time and record all of them as delivered concurrently
//!    (so they share group commits, as the dispatcher's sends do): deliveries/s claimed and
//!    recorded durably.
//!
//! Checks (the program fails otherwise): every subscriber got exactly one delivery, all of them
//! end delivered, and nothing is left due.

use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::Parser;
use crier::dispatch::EXPAND_BATCH;
use crier::domain::ExpandTarget;
use crier::domain::{
    Body, Contact, DeliveryState, Impact, IncidentKind, Locale, Subscriber, Title,
};
use crier::domain::{NewIncident, NewSubscriber};
use crier::store::port::{Incidents, Outbox, Subscribers};
use crier::store::Store;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Store work per delivery: expansion, claim + durable outcome")]
struct Args {
    /// Subscribers (one delivery each).
    #[arg(long, default_value_t = 100_000)]
    subscribers: usize,
    /// Deliveries claimed at a time and recorded concurrently.
    #[arg(long, default_value_t = 64)]
    claim: usize,
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.subscribers == 0 || args.claim == 0 {
        bail!("--subscribers and --claim must be positive");
    }
    let dir = tempfile::Builder::new()
        .prefix("crier-bench-store-")
        .tempdir()?;
    let store = Store::open(&dir.path().join("db")).context("opening the store")?;
    let now = Utc::now();
    let mut imported = 0;
    while imported < args.subscribers {
        let n = (args.subscribers - imported).min(5000);
        let batch = (imported..imported + n)
            .map(|i| {
                Ok(NewSubscriber {
                    contact: Contact::phone(&format!("+3584{i:08}"))?,
                    locale: Locale::english(),
                    components: vec![],
                    confirmed: true,
                })
            })
            .collect::<Result<Vec<_>, crier::domain::DomainError>>()?;
        store.import_subscribers(batch, now).await?;
        imported += n;
    }
    let (incident, _) = store
        .create_incident(
            NewIncident {
                titles: Default::default(),
                title: Title::parse("Check-in is slow")?,
                kind: IncidentKind::Incident,
                status: None,
                impact: Impact::Major,
                components: vec![],
                body: Body::single(Locale::english(), "We are investigating.")?,
                author: "bench".into(),
                next_update_due: None,
                draft: false,
                broadcast: vec![("sms".into(), true)],
                scheduled_for: None,
                scheduled_until: None,
                holding_statement: false,
                remind_before: None,
            },
            now,
        )
        .await?;
    println!(
        "bench_store: {} subscribers, claims of {}, {} CPU(s)",
        args.subscribers,
        args.claim,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let everyone = |_: &Subscriber| true;
    let target = ExpandTarget { reaches: &everyone };
    let started = Instant::now();
    let mut created = 0;
    loop {
        let Some(b) = store
            .broadcasts_of(incident.id)
            .await?
            .into_iter()
            .find(|b| b.channel == "sms")
        else {
            bail!("the incident has no sms broadcast");
        };
        if b.done {
            break;
        }
        created += store
            .expand(&b, &[], &target, EXPAND_BATCH, Utc::now())
            .await?
            .created;
    }
    let expanded = started.elapsed();
    if created != args.subscribers {
        bail!("{created} deliveries for {} subscribers", args.subscribers);
    }

    let started = Instant::now();
    let mut recorded = 0;
    loop {
        let claimed = store.claim_due("sms", Utc::now(), args.claim).await?;
        if claimed.is_empty() {
            break;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for claim in claimed {
            let store = store.clone();
            tasks.spawn(async move {
                let mut d = claim.delivery;
                d.state = DeliveryState::Delivered;
                d.receipt = Some(format!("SM{}", d.id));
                store.record(&d, claim.lease).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
            recorded += 1;
        }
    }
    let sent = started.elapsed();
    let mut delivered = 0;
    store
        .for_each_delivery(incident.id, |d| {
            if d.state == DeliveryState::Delivered {
                delivered += 1;
            }
        })
        .await?;
    if recorded != args.subscribers || delivered != args.subscribers {
        bail!(
            "recorded {recorded}, delivered {delivered}, of {}",
            args.subscribers
        );
    }
    if store.queue_depth().await?.0 != 0 {
        bail!("{} deliveries are still due", store.queue_depth().await?.0);
    }
    let stats = store
        .flush_stats()
        .context("the store reports no group commits")?;
    println!();
    println!(
        "{:>28} {:>10} {:>8} {:>13} {:>9}",
        "step", "deliveries", "secs", "deliveries/s", "µs each"
    );
    for (step, n, d) in [
        ("expand (batches of 1000)", created, expanded),
        ("claim + record durably", recorded, sent),
    ] {
        println!(
            "{step:>28} {n:>10} {:>8.2} {:>13.0} {:>9.1}",
            d.as_secs_f64(),
            rate(n, d),
            1e6 * d.as_secs_f64() / n as f64
        );
    }
    println!();
    println!(
        "group commits: {} syncs for {} synced writes",
        stats.syncs, stats.waiters
    );
    println!("checked: one delivery per subscriber, all delivered, none left due");
    Ok(())
}
