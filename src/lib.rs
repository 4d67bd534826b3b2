//! crier: a crisis status-update broadcaster. Incidents and their timelines live in sled; each
//! update is rendered for every channel and fanned out by email, SMS and social media. See
//! docs/ARCHITECTURE.md for the flow of an update through these modules.

pub mod adapters;
pub mod api;
pub mod backups;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod dispatch;
pub mod domain;
pub mod inbound;
pub mod intake;
pub mod leadership;
pub mod percent;
pub mod pg;
pub mod render;
pub mod schedule;
pub mod server;
pub mod store;
pub mod token;
pub mod totp;
pub mod web;
