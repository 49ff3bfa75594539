//! Fault points for crash tests (KEY-08). With `PORTCULLIS_FAULT_POINT=<name>` in its environment
//! the process aborts at the point of that name — no unwinding, no destructors, an open
//! transaction left to the database to roll back — as `kill -9` would. Unset (production), a
//! point costs one comparison with a cached value.

use std::sync::OnceLock;

static POINT: OnceLock<Option<String>> = OnceLock::new();

/// Aborts the process if `name` is the configured fault point.
pub fn point(name: &str) {
    let configured = POINT.get_or_init(|| std::env::var("PORTCULLIS_FAULT_POINT").ok());
    if configured.as_deref() == Some(name) {
        eprintln!("fault point {name}: aborting");
        std::process::abort();
    }
}
