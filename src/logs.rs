//! The process's log lines on stderr: `FLOWRUN_LOG` (an `EnvFilter`,
//! default `info,rumqttd=warn`), compact or JSON, colour only on a terminal.

use std::fmt::Debug;

use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::LogFormat;

/// Installs the process's logger.
pub fn init(log_format: LogFormat) {
    let filter = EnvFilter::try_from_env("FLOWRUN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,rumqttd=warn"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match log_format {
        LogFormat::Pretty => install(filter, layer.compact()),
        LogFormat::Json => install(filter, layer.json()),
    }
}

fn install<L>(filter: EnvFilter, layer: L)
where
    L: Layer<tracing_subscriber::layer::Layered<EnvFilter, Registry>> + Send + Sync,
{
    tracing_subscriber::registry()
        .with(filter)
        .with(layer.with_filter(PeerCloses))
        .init();
}

/// Leaves out the embedded broker's (rumqttd's) ERROR lines for a client
/// whose connection ended: rumqttd logs every client that leaves as
/// "Disconnected!!" at ERROR — a clean close, or a reset from a client
/// that exits without an MQTT DISCONNECT (as flowrun's own do, so that
/// their last will is published) — and a port probe (a healthcheck's TCP
/// connect) as an error handling its CONNECT. A demo stopped with Ctrl-C
/// ended on a screen of them. What else rumqttd says at WARN and above (a
/// keepalive missed, a malformed packet or protocol refused, a bind that
/// failed) is still logged.
struct PeerCloses;

/// How rumqttd's `error` field starts for an I/O error on the socket.
const SOCKET_ERROR: &str = "Network(Io(";

impl<S> Filter<S> for PeerCloses
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _: &Context<'_, S>) -> bool {
        if !event.metadata().target().starts_with("rumqttd") {
            return true;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        !is_peer_close(&fields.message, &fields.error)
    }
}

/// Whether a rumqttd event (its message and `error` field) only says that
/// a client's connection ended.
fn is_peer_close(message: &str, error: &str) -> bool {
    let about_a_client =
        message == "Disconnected!!" || message == "Error while handling MQTT connect packet";
    about_a_client && error.starts_with(SOCKET_ERROR)
}

/// The two fields of an event [`PeerCloses`] reads.
#[derive(Default)]
struct Fields {
    message: String,
    error: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "error" => self.error = format!("{value:?}"),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "error" => self.error = value.to_owned(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_peer_close;

    #[test]
    fn only_a_client_that_left_is_left_out() {
        let closed = r#"Network(Io(Custom { kind: ConnectionAborted, error: "connection closed by peer" }))"#;
        assert!(is_peer_close("Disconnected!!", closed));
        assert!(is_peer_close(
            "Error while handling MQTT connect packet",
            closed
        ));
        let reset = r#"Network(Io(Os { code: 104, kind: ConnectionReset, message: "Connection reset by peer" }))"#;
        assert!(is_peer_close("Disconnected!!", reset));
        // rumqttd's other errors stay.
        assert!(!is_peer_close("Disconnected!!", "Network(Timeout)"));
        assert!(!is_peer_close(
            "Error while handling MQTT connect packet",
            "Network(Protocol(InvalidProtocolLevel(5)))"
        ));
        assert!(!is_peer_close("Server error - V4", closed));
    }
}
