//! Captures the gateway's info, warning and error events (`tracing`) into the transcript.
//!
//! The core logs why it closes a connection, why a backend was lost, and every caught panic;
//! those lines are part of what a scenario proves ("the gateway closed a and logged why"). A
//! world installs a [`LogCapture`] as the thread's default subscriber for its lifetime, so the
//! capture sees exactly the events of the code it steps, in order, on this one thread.

use std::fmt;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One captured event.
#[derive(Clone)]
pub struct LogLine {
    pub level: Level,
    pub message: String,
    /// Fields in the order the call site wrote them, values as their `Display` text.
    pub fields: Vec<(&'static str, String)>,
}

impl LogLine {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `log WARN closing client connection conn=1 reason=...`.
    pub fn render(&self) -> String {
        let mut out = format!("log {} {}", self.level, self.message);
        for (k, v) in &self.fields {
            out.push(' ');
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }
}

/// The capturing subscriber; clone it to read what it captured.
#[derive(Clone, Default)]
pub struct LogCapture {
    lines: Arc<Mutex<Vec<LogLine>>>,
}

impl LogCapture {
    /// Takes everything captured so far.
    pub fn drain(&self) -> Vec<LogLine> {
        match self.lines.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(_) => Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lines.lock().map(|g| g.is_empty()).unwrap_or(true)
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.to_string());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.to_string());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string());
    }
    /// `%x` fields and the message arrive here; their `Debug` is their `Display`.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.fields.push((field.name(), value));
        }
    }
}

impl Subscriber for LogCapture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // turmoil's own events (hosts registered, binds) are the simulator's, not the gateway's.
        *metadata.level() <= Level::INFO && !metadata.target().starts_with("turmoil")
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        if let Ok(mut g) = self.lines.lock() {
            g.push(LogLine {
                level: *event.metadata().level(),
                message: f.message,
                fields: f.fields,
            });
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
