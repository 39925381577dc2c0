//! The QoS a broker granted per subscription filter. A SUBACK may grant
//! less than asked (RabbitMQ 3.10 grants 1 for 2): messages then arrive at
//! the lower QoS, so "exactly once" silently becomes "at least once" (a
//! duplicate after a reconnect). Said once per filter in the log, and in
//! the node's status.

use std::collections::HashSet;

use super::Qos;

/// Filters already warned about, so that a reconnect does not repeat it.
#[derive(Default)]
pub struct Granted {
    warned: HashSet<String>,
}

impl Granted {
    /// Notes a SUBACK's `answers` to `asked`; returns the status suffix
    /// naming each filter granted less than asked (empty when none was).
    pub fn note(
        &mut self,
        asked: &[(String, Qos)],
        answers: &[Result<Qos, String>],
        node: &str,
    ) -> String {
        let mut lowered = Vec::new();
        for ((filter, want), answer) in asked.iter().zip(answers) {
            let Ok(got) = answer else { continue };
            if u8::from(*got) >= u8::from(*want) {
                continue;
            }
            let (want, got) = (u8::from(*want), u8::from(*got));
            if self.warned.insert(filter.clone()) {
                tracing::warn!(node = %node, %filter, "the broker granted QoS {got} where {want} was asked: messages on this filter arrive at QoS {got}");
            }
            lowered.push(format!("`{filter}` granted QoS {got} of {want}"));
        }
        if lowered.is_empty() {
            String::new()
        } else {
            format!("; {}", lowered.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_filters_granted_less_than_asked() {
        let asked = [
            ("a/#".to_owned(), Qos::ExactlyOnce),
            ("b/#".to_owned(), Qos::AtLeastOnce),
            ("c/#".to_owned(), Qos::ExactlyOnce),
        ];
        let answers = [
            Ok(Qos::AtLeastOnce),
            Ok(Qos::AtLeastOnce),
            Err("refused".to_owned()),
        ];
        let mut granted = Granted::default();
        assert_eq!(
            granted.note(&asked, &answers, "n"),
            "; `a/#` granted QoS 1 of 2"
        );
        assert!(granted.warned.contains("a/#"));
    }
}
