//! Token buckets for speed limits. Time is a parameter (seconds, any monotonic
//! origin), never read here, so the arithmetic is testable and deterministic.

/// A bucket that fills at `rate` bytes per second up to `burst` bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: f64,
}

/// What a [`TokenBucket::take`] allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grant {
    /// Bytes that may go now.
    pub allowed: u64,
    /// Seconds until more may go: 0 when everything asked for was allowed, else the
    /// time until the rest (or a full burst, if the rest is larger) is available.
    pub wait: f64,
}

impl TokenBucket {
    /// A full bucket. None unless rate and burst are finite and positive.
    pub fn new(rate: f64, burst: f64, now: f64) -> Option<TokenBucket> {
        let valid = |x: f64| x.is_finite() && x > 0.0;
        if !valid(rate) || !valid(burst) {
            return None;
        }
        Some(TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: if now.is_finite() { now } else { 0.0 },
        })
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn burst(&self) -> f64 {
        self.burst
    }

    fn refill(&mut self, now: f64) {
        // A clock that stands still, goes back or is not a number adds nothing.
        if now.is_finite() && now > self.last {
            self.tokens = (self.tokens + (now - self.last) * self.rate).min(self.burst);
            self.last = now;
        }
    }

    /// Whole bytes available at `now`.
    pub fn available(&mut self, now: f64) -> u64 {
        self.refill(now);
        self.whole_tokens()
    }

    /// Tokens as whole bytes; the tolerance absorbs float error such as
    /// 0.1 s * 1000 B/s coming out as 99.999...
    fn whole_tokens(&self) -> u64 {
        (self.tokens + 1e-6) as u64
    }

    /// Takes up to `want` bytes' worth of tokens.
    pub fn take(&mut self, want: u64, now: f64) -> Grant {
        self.refill(now);
        let allowed = want.min(self.whole_tokens());
        self.tokens = (self.tokens - allowed as f64).max(0.0);
        let rest = (want - allowed) as f64;
        let wait = if rest > 0.0 {
            (rest.min(self.burst) - self.tokens).max(0.0) / self.rate
        } else {
            0.0
        };
        Grant { allowed, wait }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_parameters() {
        assert!(TokenBucket::new(0.0, 1.0, 0.0).is_none());
        assert!(TokenBucket::new(1.0, -1.0, 0.0).is_none());
        assert!(TokenBucket::new(f64::NAN, 1.0, 0.0).is_none());
        assert!(TokenBucket::new(f64::INFINITY, 1.0, 0.0).is_none());
    }

    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(1000.0, 500.0, 10.0).unwrap();
        assert_eq!(
            b.take(300, 10.0),
            Grant {
                allowed: 300,
                wait: 0.0
            }
        );
        let g = b.take(300, 10.0);
        assert_eq!(g.allowed, 200);
        assert!((g.wait - 0.1).abs() < 1e-9, "{g:?}");
        assert_eq!(b.take(100, 10.1).allowed, 100);
        // never more than the burst, however long it waited
        assert_eq!(b.available(1000.0), 500);
    }

    #[test]
    fn large_request_waits_for_a_burst() {
        let mut b = TokenBucket::new(100.0, 50.0, 0.0).unwrap();
        let g = b.take(10_000, 0.0);
        assert_eq!(g.allowed, 50);
        assert!((g.wait - 0.5).abs() < 1e-9);
    }

    #[test]
    fn clock_going_back_adds_nothing() {
        let mut b = TokenBucket::new(100.0, 100.0, 5.0).unwrap();
        assert_eq!(b.take(100, 5.0).allowed, 100);
        assert_eq!(b.take(1, 1.0).allowed, 0);
        assert_eq!(b.take(1, f64::NAN).allowed, 0);
        assert_eq!(b.take(50, 5.5).allowed, 50);
    }

    #[test]
    fn rate_holds_over_time() {
        let mut b = TokenBucket::new(1000.0, 100.0, 0.0).unwrap();
        let mut now = 0.0;
        let mut sent = 0;
        while now < 10.0 {
            let g = b.take(64, now);
            sent += g.allowed;
            now += if g.wait > 0.0 { g.wait } else { 0.001 };
        }
        // 10 s at 1000 B/s plus the initial burst
        assert!((10_000..=10_200).contains(&sent), "{sent}");
    }
}
