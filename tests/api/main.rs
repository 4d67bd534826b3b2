//! All integration tests, in one binary (one build, shared helpers).

mod channels_check;
mod cli;
mod delivery;
mod durability;
mod e2e;
mod e2e_matrix;
mod errors;
mod helpers;
mod hooks;
mod incidents;
mod intake;
mod notice;
mod openapi;
mod preview;
mod social;
mod subscribers;
