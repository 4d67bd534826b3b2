//! Schedules: recurring notices in crontab(5) syntax, evaluated by the `cron` crate in their IANA
//! time zone behind crier's crontab front and DST guard (see [`cron`]); the scheduler's tick
//! ([`scheduler`]) and its settings ([`settings`]).

pub mod cron;
pub mod scheduler;
pub mod settings;

pub use scheduler::{Scheduler, TickReport};
pub use settings::ScheduleSettings;

#[cfg(test)]
mod tests;
