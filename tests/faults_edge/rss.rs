//! A process's memory from `/proc/<pid>/status`.

/// `VmRSS` (now) or `VmHWM` (the peak so far) of `pid`, in KiB.
pub fn kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
