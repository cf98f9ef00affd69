//! Untrusted statement text through the gateway's own SQL text handling: the multi-statement
//! splitter (run by the server connection on every COM_QUERY), the normaliser (the plan-cache
//! key, on every query) and its literal extraction, and parameter rendering. None may panic.
//!
//! `cargo fuzz run -s none sql_text`

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardgate_core::sql::{normalize, render_with_params, split_statements};
use shardgate_core::wire::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for piece in split_statements(text) {
        assert!(
            text.contains(piece),
            "split_statements returned text that is not part of the batch"
        );
        assert!(
            !piece.trim().is_empty(),
            "split_statements returned an empty piece"
        );
    }
    if let Some(n) = normalize(text) {
        for lit in &n.literals {
            let _ = lit.value(text);
        }
    }
    let params = [
        Value::Int(-1),
        Value::text("a'b\\c"),
        Value::Null,
        Value::Double(1.5),
    ];
    for k in 0..=params.len() {
        let _ = render_with_params(text, &params[..k]);
    }
});
