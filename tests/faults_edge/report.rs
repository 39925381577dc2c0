//! The one machine-readable line a scenario prints, for
//! `bench/reliability/edge.sh` to turn into a table.

use std::fmt;

pub struct Figures {
    pub scenario: &'static str,
    pub sent: u64,
    pub stored: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub recover_ms: u128,
    /// Further `key=value` figures particular to the scenario.
    pub extra: Vec<(&'static str, String)>,
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RELIABILITY scenario={} sent={} stored={} lost={} duplicated={} recover_ms={}",
            self.scenario, self.sent, self.stored, self.lost, self.duplicated, self.recover_ms
        )?;
        for (key, value) in &self.extra {
            write!(f, " {key}={value}")?;
        }
        Ok(())
    }
}
