//! Logging setup (tracing).
