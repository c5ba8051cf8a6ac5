//! Sending one event stream to several sinks.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use sykli_runtime::events::{Envelope, Event, EventSink};

/// An [`EventSink`] that forwards every event to each of its sinks, in order.
///
/// A sink that panics is isolated: the panic is caught and the other sinks still get the
/// event, so one broken reporter cannot take the run down.
#[derive(Clone, Default)]
pub struct Fanout {
    sinks: Vec<Arc<dyn EventSink>>,
}

impl Fanout {
    /// A fan-out with no sinks.
    pub fn new() -> Self {
        Fanout::default()
    }

    /// Adds a sink (builder style).
    pub fn with(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Adds a sink.
    pub fn push(&mut self, sink: Arc<dyn EventSink>) {
        self.sinks.push(sink);
    }

    /// How many sinks receive events.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether no sink is attached.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

impl EventSink for Fanout {
    fn emit(&self, event: &Event) {
        for sink in &self.sinks {
            let _ = catch_unwind(AssertUnwindSafe(|| sink.emit(event)));
        }
    }

    fn emit_envelope(&self, envelope: &Envelope) {
        for sink in &self.sinks {
            let _ = catch_unwind(AssertUnwindSafe(|| sink.emit_envelope(envelope)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<Event>>);
    impl EventSink for Collect {
        fn emit(&self, event: &Event) {
            self.0.lock().unwrap().push(event.clone());
        }
    }
    struct Panics;
    impl EventSink for Panics {
        fn emit(&self, _: &Event) {
            panic!("broken reporter");
        }
    }

    #[test]
    fn every_sink_gets_every_event_even_after_a_panicking_one() {
        let a = Arc::new(Collect::default());
        let b = Arc::new(Collect::default());
        let fan = Fanout::new()
            .with(a.clone())
            .with(Arc::new(Panics))
            .with(b.clone());
        let ev = Event::TaskOutput {
            task: "t".into(),
            stream: sykli_runtime::exec::OutputStream::Stdout,
            line: "hi".into(),
        };
        fan.emit(&ev);
        fan.emit(&ev);
        assert_eq!(a.0.lock().unwrap().len(), 2);
        assert_eq!(b.0.lock().unwrap().len(), 2);
        assert_eq!(fan.len(), 3);
    }
}
