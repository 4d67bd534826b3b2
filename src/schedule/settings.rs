//! The scheduler's settings, from the `[notices]`, `[promises]` and `[maintenance]` tables of
//! `crier.toml`. Durations are written `30s`, `10m`, `2h`; every key is optional.

use crate::domain::Span;
use serde::Deserialize;
use std::time::Duration;

/// What to do with a notice firing that was missed (crier was down at its time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// Send the latest missed firing once, if it is at most `grace` old; skip older ones.
    #[default]
    Send,
    /// Skip every missed firing (logged).
    Skip,
}

/// `[notices]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticesFile {
    pub missed: Option<Missed>,
    pub grace: Option<String>,
}

/// `[promises]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromisesFile {
    /// Staff channels that get "the next update is due" reminders.
    pub reminder_channels: Option<Vec<String>>,
    /// How long before the promised time the reminder goes.
    pub remind_before: Option<String>,
    /// Every incident gets a holding statement when its promise is missed.
    pub holding_statement: Option<bool>,
    /// Channels that opted in to holding statements for every incident.
    pub holding_statement_channels: Option<Vec<String>>,
    /// The new promise a holding statement makes ("next update in 30 minutes").
    pub holding_next_update: Option<String>,
}

/// `[maintenance]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceFile {
    /// Send a reminder to the maintenance's audience this long before it starts.
    pub remind_before: Option<String>,
}

/// The validated scheduler settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSettings {
    /// How often the scheduler looks at the clock.
    pub tick: Duration,
    /// A firing later than this is "missed" (crier was down); earlier is on time.
    pub on_time: Duration,
    pub missed: Missed,
    pub grace: Duration,
    pub reminder_channels: Vec<String>,
    pub remind_before: Duration,
    pub holding_statement: bool,
    pub holding_statement_channels: Vec<String>,
    pub holding_next_update: Duration,
    pub maintenance_remind_before: Option<Duration>,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            tick: Duration::from_secs(1),
            on_time: Duration::from_secs(120),
            missed: Missed::Send,
            grace: Duration::from_secs(3600),
            reminder_channels: Vec::new(),
            remind_before: Duration::from_secs(600),
            holding_statement: false,
            holding_statement_channels: Vec::new(),
            holding_next_update: Duration::from_secs(1800),
            maintenance_remind_before: None,
        }
    }
}

impl ScheduleSettings {
    /// Builds the settings from the file's tables; errors name the key.
    pub fn from_file(
        notices: Option<NoticesFile>,
        promises: Option<PromisesFile>,
        maintenance: Option<MaintenanceFile>,
    ) -> Result<Self, String> {
        let mut s = ScheduleSettings::default();
        let dur = |key: &str, v: &str| {
            Span::parse(v)
                .map(Span::as_std)
                .map_err(|e| format!("{key}: {e}"))
        };
        if let Some(n) = notices {
            if let Some(m) = n.missed {
                s.missed = m;
            }
            if let Some(g) = n.grace {
                s.grace = dur("notices.grace", &g)?;
            }
        }
        if let Some(p) = promises {
            if let Some(c) = p.reminder_channels {
                s.reminder_channels = c;
            }
            if let Some(v) = p.remind_before {
                s.remind_before = dur("promises.remind_before", &v)?;
            }
            if let Some(v) = p.holding_statement {
                s.holding_statement = v;
            }
            if let Some(c) = p.holding_statement_channels {
                s.holding_statement_channels = c;
            }
            if let Some(v) = p.holding_next_update {
                // It becomes a next-update promise: the same bounds as one.
                s.holding_next_update =
                    Span::parse_in(&v, Span::from_secs(60), Span::from_secs(7 * 86_400))
                        .map(Span::as_std)
                        .map_err(|e| format!("promises.holding_next_update: {e}"))?;
            }
        }
        if let Some(m) = maintenance {
            if let Some(v) = m.remind_before {
                s.maintenance_remind_before = Some(dur("maintenance.remind_before", &v)?);
            }
        }
        Ok(s)
    }

    /// Every channel name the settings mention, with the key that mentions it.
    pub fn channel_names(&self) -> Vec<(&'static str, &str)> {
        self.reminder_channels
            .iter()
            .map(|c| ("promises.reminder_channels", c.as_str()))
            .chain(
                self.holding_statement_channels
                    .iter()
                    .map(|c| ("promises.holding_statement_channels", c.as_str())),
            )
            .collect()
    }
}
