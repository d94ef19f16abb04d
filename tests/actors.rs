//! Actors under load: 1,000 actors each exchanging 1,000 messages (small
//! tables, copied across states) with a hub, every value verified.

mod common;

use std::time::Duration;

use common::{lugo, run};

#[test]
fn a_thousand_actors_exchange_a_million_messages_with_a_hub() {
    let out = run(
        lugo().args(["scripts/conformance/lib/actor_hub.lua", "1000", "1000"]),
        None,
        Duration::from_secs(120),
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    assert!(
        out.stdout.contains("1000 actors x 1000 messages")
            && out.stdout.contains("1000000 round trips"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout.trim_end().ends_with("actors alive 1"),
        "every actor ended: {}",
        out.describe()
    );
}
