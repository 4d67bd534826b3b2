//! Schedules: recurring notices in crontab(5) syntax evaluated in their IANA time zone, guarded
//! against the cron crate's DST faults (see [`cron`]).

pub mod cron;
pub mod scheduler;
pub mod settings;

pub use scheduler::{Scheduler, TickReport};
pub use settings::ScheduleSettings;

#[cfg(test)]
mod tests;
