//! Why a connection failed, in words a user can act on: what the network,
//! the TLS handshake or the broker (its CONNACK code, with the number that
//! broker logs and documentation give) said, and which setting to check.
//! Never rumqttc's bare "Timeout" for an answer the peer did give.

use std::io::ErrorKind;

use rumqttc::tokio_rustls::rustls;

use super::Cause;

/// Seconds rumqttc waits for TCP, TLS and the CONNACK together (its
/// default `connection_timeout`, for both versions).
pub(super) const CONNECT_TIMEOUT_SECS: u64 = 5;

const HINT_V5: &str = "the broker does not speak MQTT 5: set `protocol: auto` or \"3.1.1\"";

/// A network error. `connecting`: before the CONNACK; `v5`: the CONNECT
/// was MQTT 5's.
pub(super) fn io(io: &std::io::Error, connecting: bool, v5: bool) -> (String, Cause) {
    let text = match io.kind() {
        ErrorKind::ConnectionRefused => {
            return ("connection refused: nothing listens at the broker's address and port (check `url`, and that the broker runs)".to_owned(), Cause::NothingListens)
        }
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => format!(
            "the broker's host is unreachable: {io} (check `url`'s host and the network route to it)"
        ),
        ErrorKind::TimedOut => format!(
            "the broker's host did not answer: {io} (check `url`, and a firewall dropping packets)"
        ),
        // getaddrinfo's failures have no kind of their own.
        _ if is_dns(io) => format!(
            "the broker's host name does not resolve: {io} (check `url`'s host, and DNS)"
        ),
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::UnexpectedEof
        | ErrorKind::BrokenPipe
        | ErrorKind::InvalidData
            if connecting =>
        {
            return closed_before_connack(io, v5);
        }
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof => {
            format!("the broker closed the connection ({io})")
        }
        _ => format!("network error: {io}"),
    };
    (text, Cause::Other)
}

fn is_dns(io: &std::io::Error) -> bool {
    let text = io.to_string();
    text.contains("failed to lookup address") || text.contains("could not resolve")
}

/// The broker closed the connection (or sent something that is no CONNACK)
/// after the CONNECT: a 3.1.1-only broker's answer to an MQTT 5 CONNECT, or
/// a port that is not MQTT, or a TLS port spoken to in plain.
fn closed_before_connack(io: &std::io::Error, v5: bool) -> (String, Cause) {
    let what = if io.kind() == ErrorKind::InvalidData {
        "answered the CONNECT with something that is not a CONNACK"
    } else {
        "closed the connection before answering the CONNECT (no CONNACK)"
    };
    let hint = if v5 {
        format!("likely {HINT_V5}")
    } else {
        "check that `url` is the broker's MQTT port, with mqtts:// for a TLS port".to_owned()
    };
    (
        format!("the broker {what} ({io}): {hint}"),
        Cause::ClosedBeforeConnAck,
    )
}

/// No CONNACK within the connect timeout: nothing answered at all.
pub(super) fn timeout(v5: bool) -> (String, Cause) {
    let also = if v5 {
        format!("; or {HINT_V5}")
    } else {
        String::new()
    };
    (
        format!(
            "no answer from the broker within {CONNECT_TIMEOUT_SECS} s of connecting (check `url`: host, port, mqtt:// or mqtts://; and a firewall dropping packets{also})"
        ),
        Cause::Timeout,
    )
}

/// An acknowledgement for a packet id this connection is not waiting for.
/// rumqttc ends the connection on it; seen after a broker restart, when a
/// resumed session acknowledges a resent publish twice. Nothing is lost:
/// what is unacknowledged is sent again on the new connection.
pub(super) fn unsolicited(pkid: u16) -> String {
    format!("the broker acknowledged packet {pkid}, which this connection was not waiting for (a repeated acknowledgement after a resumed session); reconnecting")
}

/// The broker sent bytes that do not parse as MQTT: a broken broker, or a
/// port that is not MQTT's.
pub(super) fn malformed(error: &impl std::fmt::Display) -> String {
    format!("the broker sent a packet that is not valid MQTT ({error}): check that `url` is the broker's MQTT port; reconnecting")
}

/// No PINGRESP to a keepalive ping: the broker or the way to it went quiet.
pub(super) const SILENT: &str = "the broker stopped answering: no reply to a keepalive ping within `keepalive_secs` (the network or the broker is down); reconnecting";

/// A TLS handshake that failed, with the certificate's reason where rustls
/// gives one: its own words ("invalid peer certificate: UnknownIssuer") do
/// not say which setting to look at.
pub(super) fn tls(error: &rumqttc::TlsError) -> (String, Cause) {
    let inner = match error {
        rumqttc::TlsError::TLS(e) => Some(e),
        rumqttc::TlsError::Io(io) => io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    let why = match inner {
        Some(rustls::Error::InvalidCertificate(cert)) => certificate(cert),
        Some(rustls::Error::AlertReceived(alert)) => format!(
            "the broker ended the handshake ({alert:?}): it may require a client certificate (check `tls.cert_file`/`key_file`) or refuse the one sent"
        ),
        Some(rustls::Error::InvalidMessage(_)) => {
            "the broker's answer is not TLS (check the port: is it a TLS listener? mqtt:// for a plain one)".to_owned()
        }
        _ => match error {
            // A plain listener takes the ClientHello for a broken packet
            // and drops the connection.
            rumqttc::TlsError::Io(io)
                if matches!(
                    io.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::UnexpectedEof
                        | ErrorKind::BrokenPipe
                ) =>
            {
                format!("the broker closed the connection during the handshake ({io}): check the port: is it a TLS listener? (mqtt:// for a plain one)")
            }
            rumqttc::TlsError::Io(io) if io.kind() != ErrorKind::InvalidData => {
                return self::io(io, true, false);
            }
            rumqttc::TlsError::NoValidCertInChain => {
                "no CA certificate in `tls.ca_file` (check that it is a PEM file)".to_owned()
            }
            rumqttc::TlsError::NoValidClientCertInChain | rumqttc::TlsError::NoValidKeyInChain => {
                "no client certificate or key (check `tls.cert_file` and `tls.key_file`: PEM files)".to_owned()
            }
            other => format!(
                "{other} (check `tls.ca_file`: the CA that signed the broker's certificate; and `tls.cert_file`/`key_file` if the broker requires a client certificate)"
            ),
        },
    };
    (format!("TLS handshake failed: {why}"), Cause::Other)
}

fn certificate(cert: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    match cert {
        E::UnknownIssuer => "the broker's certificate is not signed by a CA we trust (UnknownIssuer; check `tls.ca_file`: the CA that signed it)".into(),
        E::NotValidForName => "the broker's certificate is not for this host name (NotValidForName; check `url`'s host against the certificate's names)".into(),
        E::Expired => "the broker's certificate has expired (Expired)".into(),
        E::NotValidYet => "the broker's certificate is not valid yet (NotValidYet; check the clocks)".into(),
        E::Revoked => "the broker's certificate is revoked (Revoked)".into(),
        E::BadSignature => "the broker's certificate has a bad signature (BadSignature)".into(),
        other => format!("invalid broker certificate: {other:?} (check `tls.ca_file`)"),
    }
}

const CREDENTIALS: &str = "check `username` and `password`";

/// An MQTT 3.1.1 CONNACK refusal: the code, what it means, what to check.
pub(super) fn refused_v3(code: rumqttc::ConnectReturnCode) -> (String, Cause) {
    use rumqttc::ConnectReturnCode as C;
    let (number, meaning, hint, cause) = match code {
        C::RefusedProtocolVersion => (
            1,
            "unacceptable protocol version",
            "it does not speak MQTT 3.1.1: set `protocol: auto` or \"5\"",
            Cause::VersionRefused,
        ),
        C::BadClientId => (
            2,
            "client identifier rejected",
            "check `client_id`",
            Cause::Other,
        ),
        C::ServiceUnavailable => (
            3,
            "server unavailable",
            "the broker takes no clients now; retrying",
            Cause::Other,
        ),
        C::BadUserNamePassword => (4, "bad user name or password", CREDENTIALS, Cause::Other),
        C::NotAuthorized => (5, "not authorized", CREDENTIALS, Cause::Other),
        C::Success => (0, "success", "a bug: a success refused", Cause::Other),
    };
    (refusal(number, meaning, hint), cause)
}

/// An MQTT 5 CONNACK refusal: the reason code, what it means, what to check.
pub(super) fn refused_v5(code: rumqttc::v5::mqttbytes::v5::ConnectReturnCode) -> (String, Cause) {
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as C;
    let retry = "retrying";
    let (number, meaning, hint) = match code {
        C::RefusedProtocolVersion | C::UnsupportedProtocolVersion => {
            return (
                refusal(0x84, "unsupported protocol version", HINT_V5),
                Cause::VersionRefused,
            )
        }
        C::Success => (0x00, "success", "a bug: a success refused"),
        C::BadClientId | C::ClientIdentifierNotValid => {
            (0x85, "client identifier not valid", "check `client_id`")
        }
        C::ServiceUnavailable | C::ServerUnavailable => (0x88, "server unavailable", retry),
        C::BadUserNamePassword => (0x86, "bad user name or password", CREDENTIALS),
        C::NotAuthorized => (0x87, "not authorized", CREDENTIALS),
        C::UnspecifiedError => (0x80, "unspecified error", "see the broker's log"),
        C::MalformedPacket => (0x81, "malformed packet", "see the broker's log"),
        C::ProtocolError => (0x82, "protocol error", "see the broker's log"),
        C::ImplementationSpecificError => (
            0x83,
            "implementation specific error",
            "see the broker's log",
        ),
        C::ServerBusy => (0x89, "server busy", retry),
        C::Banned => (0x8A, "banned", "the broker bans this client"),
        C::BadAuthenticationMethod => (0x8C, "bad authentication method", CREDENTIALS),
        C::TopicNameInvalid => (0x90, "topic name invalid", "check `will.topic`"),
        C::PacketTooLarge => (0x95, "packet too large", "check `will.payload`"),
        C::QuotaExceeded => (0x97, "quota exceeded", retry),
        C::PayloadFormatInvalid => (0x99, "payload format invalid", "check `will`"),
        C::RetainNotSupported => (0x9A, "retain not supported", "check `will.retain`"),
        C::QoSNotSupported => (0x9B, "QoS not supported", "check `will.qos`"),
        C::UseAnotherServer => (0x9C, "use another server", "check `url`"),
        C::ServerMoved => (0x9D, "server moved", "check `url`"),
        C::ConnectionRateExceeded => (0x9F, "connection rate exceeded", retry),
    };
    (refusal(number, meaning, hint), Cause::Other)
}

fn refusal(number: u8, meaning: &str, hint: &str) -> String {
    format!("the broker refused the connection: {meaning} (CONNACK code {number:#04x}): {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_code_and_the_setting() {
        let (text, cause) = refused_v3(rumqttc::ConnectReturnCode::BadUserNamePassword);
        assert_eq!(
            text,
            "the broker refused the connection: bad user name or password (CONNACK code 0x04): check `username` and `password`"
        );
        assert_eq!(cause, Cause::Other);
        let (text, cause) =
            refused_v5(rumqttc::v5::mqttbytes::v5::ConnectReturnCode::UnsupportedProtocolVersion);
        assert!(text.contains("(CONNACK code 0x84)"), "{text}");
        assert!(text.contains("set `protocol: auto`"), "{text}");
        assert_eq!(cause, Cause::VersionRefused);
    }

    #[test]
    fn a_closed_connection_before_connack_is_not_a_timeout() {
        let reset = std::io::Error::new(ErrorKind::ConnectionReset, "connection reset by peer");
        let (text, cause) = io(&reset, true, true);
        assert_eq!(cause, Cause::ClosedBeforeConnAck);
        assert!(text.contains("does not speak MQTT 5"), "{text}");
        let (text, cause) = io(&reset, false, true);
        assert_eq!(cause, Cause::Other);
        assert!(text.contains("closed the connection"), "{text}");
        let (text, _) = timeout(false);
        assert!(!text.contains("Timeout"), "{text}");
    }
}
