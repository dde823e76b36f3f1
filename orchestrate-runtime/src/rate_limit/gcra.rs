//! The GCRA of shared rate limits: the Lua script the store runs, and the same arithmetic in Rust
//! (its twin, which the tests hold the script to).
//!
//! The script (after rwz/redis-gcra, itself after go-redis/redis_rate): `tat = max(GET, now)`,
//! `new_tat = tat + interval`; admitted when `new_tat - burst * interval <= now`, and only then
//! stored: a refused request does not move `tat`, so a client hammering a limit is not pushed
//! further out. `now` is Redis's `TIME`, so instances whose clocks disagree agree on the limit.
//!
//! ```
//! use orchestrate_runtime::rate_limit::gcra::{Decision, decide};
//! // 2 a second: an interval of 500 ms, a burst of 2.
//! let first = decide(None, 0, 500_000, 2);
//! assert_eq!(first, Decision::Admitted { tat: 500_000, keep: 500_000 });
//! let second = decide(Some(500_000), 0, 500_000, 2);
//! assert_eq!(second, Decision::Admitted { tat: 1_000_000, keep: 1_000_000 });
//! assert_eq!(decide(Some(1_000_000), 0, 500_000, 2), Decision::Refused { wait: 500_000 });
//! ```

use crate::store::Script;
use orchestrate_core::policy::Rate;

/// The GCRA. `KEYS[1]`: the key's state. `ARGV`: the interval and the burst (microseconds,
/// requests), and, only in tests of the script against [`decide`], a fixed `now` (microseconds) in
/// place of `TIME`. Returns
/// `{1, 0}` when admitted, `{0, wait}` (microseconds) when refused.
pub static GCRA: Script = Script::new(
    "rate_limit_gcra",
    r"
    local interval = tonumber(ARGV[1])
    local burst = tonumber(ARGV[2])
    local now
    if ARGV[3] then
        now = tonumber(ARGV[3])
    else
        local time = redis.call('TIME')
        now = tonumber(time[1]) * 1000000 + tonumber(time[2])
    end
    local tat = tonumber(redis.call('GET', KEYS[1])) or now
    if tat < now then tat = now end
    local new_tat = tat + interval
    local allow_at = new_tat - burst * interval
    if allow_at > now then
        return {0, allow_at - now}
    end
    redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
    return {1, 0}
    ",
);

/// What the GCRA decides for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Admitted; the key's state becomes `tat`, kept `keep` microseconds.
    Admitted {
        /// The new theoretical arrival time.
        tat: u64,
        /// How long the state matters (it is then as good as new).
        keep: u64,
    },
    /// Refused: admitted again in `wait` microseconds; the state does not change.
    Refused {
        /// Microseconds until a request would be admitted.
        wait: u64,
    },
}

/// The script's arithmetic: a request at `now` against the state `stored` (microseconds).
pub fn decide(stored: Option<u64>, now: u64, interval: u64, burst: u64) -> Decision {
    let tat = stored.unwrap_or(now).max(now);
    let new_tat = tat + interval;
    let allow_at = new_tat.saturating_sub(burst * interval);
    if allow_at > now {
        Decision::Refused { wait: allow_at - now }
    } else {
        Decision::Admitted { tat: new_tat, keep: new_tat - now }
    }
}

/// `rate`'s interval and burst as the script takes them.
pub fn script_args(rate: Rate) -> (u64, u64) {
    let interval = u64::try_from(rate.interval().as_micros()).unwrap_or(u64::MAX).max(1);
    (interval, u64::from(rate.count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_twin_admits_the_burst_then_one_per_interval_and_refusals_do_not_move_the_state() {
        let (interval, burst) = (600_000, 100); // 100/min
        let mut tat = None;
        for _ in 0..100 {
            match decide(tat, 0, interval, burst) {
                Decision::Admitted { tat: t, .. } => tat = Some(t),
                Decision::Refused { .. } => panic!("refused within the burst"),
            }
        }
        assert_eq!(tat, Some(60_000_000));
        for _ in 0..5 {
            assert_eq!(decide(tat, 0, interval, burst), Decision::Refused { wait: 600_000 });
        }
        assert_eq!(decide(tat, 599_999, interval, burst), Decision::Refused { wait: 1 });
        assert_eq!(decide(tat, 600_000, interval, burst), Decision::Admitted { tat: 60_600_000, keep: 60_000_000 });
        assert_eq!(decide(Some(5), 10_000_000, interval, burst), Decision::Admitted { tat: 10_600_000, keep: 600_000 });
    }
}
