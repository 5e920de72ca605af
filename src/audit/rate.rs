//! Rate limiting of `auth_failed` records: a flood of bad signatures must
//! neither fill the disk nor drown the ledger.

use std::time::Instant;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    dropped: u64,
}

/// What the bucket said.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// Go ahead; this many were dropped since the previous one that went.
    Admitted(u64),
    /// Dropped; `true` for the first of a run.
    Dropped(bool),
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
            dropped: 0,
        }
    }

    pub fn take(&mut self, now: Instant) -> Take {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = self.last.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Take::Admitted(std::mem::take(&mut self.dropped))
        } else {
            self.dropped += 1;
            Take::Dropped(self.dropped == 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_bucket_admits_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 100.0, t0);
        let admitted = (0..150)
            .filter(|_| matches!(b.take(t0), Take::Admitted(_)))
            .count();
        assert_eq!(admitted, 100);
        // 0.1 s later: one more token, and the 50 dropped are counted.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.take(t1), Take::Admitted(50));
        assert_eq!(b.take(t1), Take::Dropped(true));
        assert_eq!(b.take(t1), Take::Dropped(false));
        // Never more than the burst saved up.
        let t2 = t1 + Duration::from_secs(3600);
        let admitted = (0..150)
            .filter(|_| matches!(b.take(t2), Take::Admitted(_)))
            .count();
        assert_eq!(admitted, 100);
    }
}
