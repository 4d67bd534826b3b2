//! All integration tests, in one binary (one build, shared helpers).

mod audit;
mod authz;
mod backup;
mod channels_check;
mod cli;
mod cli_first_hour;
mod cli_languages;
mod delivery;
mod disk_full;
mod durability;
mod e2e;
mod e2e_matrix;
mod errors;
mod hardening_low;
mod helpers;
mod hooks;
mod incidents;
mod intake;
mod notice;
mod openapi;
mod preview;
mod promises;
mod sessions;
mod social;
mod subscribers;
mod team_cli;
