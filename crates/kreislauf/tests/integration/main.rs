//! Tests of the real `kreislauf` binary: crash safety, the official Segment clients, and the CLI.

mod cli;
mod crash;
mod real_clients;
mod support;
