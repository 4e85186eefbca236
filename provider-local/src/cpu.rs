//! CPU time of a function's processes, read from `/proc/<pid>/stat`.

use std::time::Duration;

/// `/proc` counts CPU time in clock ticks of `USER_HZ`, which Linux fixes
/// at 100 per second on every architecture it exports to user space.
const TICKS_PER_SECOND: u64 = 100;

/// The CPU time (user and system, its reaped children's included) used so
/// far by each of `pids`, summed; a pid that is gone counts nothing.
pub(crate) fn used_by(pids: &[u32]) -> Duration {
    let ticks: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| ticks_in(&stat))
        .sum();
    Duration::from_millis(ticks.saturating_mul(1000 / TICKS_PER_SECOND))
}

/// utime + stime + cutime + cstime (fields 14 to 17) of one `stat` line.
/// The command name (field 2) may hold spaces and parentheses, so fields
/// are counted from after its last `)`.
fn ticks_in(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name: 14..=17 are 11..=14 here.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let mut sum = 0u64;
    for field in fields.get(11..15)? {
        sum = sum.saturating_add(field.parse::<i64>().ok()?.max(0) as u64);
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_cpu_fields_are_summed_past_a_tricky_name() {
        let stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194304 100 0 0 0 12 3 4 5 20 0 1 0 100 1000 10";
        assert_eq!(ticks_in(stat), Some(12 + 3 + 4 + 5));
        assert_eq!(ticks_in("4242 (short) S 1"), None);
    }

    #[test]
    fn a_busy_process_of_ours_has_used_cpu_and_a_gone_pid_none() {
        // This test process uses CPU until the kernel's tick-grained
        // accounting shows some (bounded: a few seconds at most).
        let me = std::process::id();
        let start = std::time::Instant::now();
        let mut spin = 0u64;
        while used_by(&[me]) == Duration::ZERO && start.elapsed() < Duration::from_secs(5) {
            for i in 0..100_000u64 {
                spin = std::hint::black_box(spin.wrapping_add(i));
            }
        }
        assert!(used_by(&[me]) > Duration::ZERO);
        assert_eq!(used_by(&[u32::MAX]), Duration::ZERO);
    }
}
