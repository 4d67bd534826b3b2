//! Schedules: recurring notices in crontab(5) syntax evaluated in their IANA time zone, guarded
//! against the cron crate's DST faults (see [`cron`]).

pub mod cron;
