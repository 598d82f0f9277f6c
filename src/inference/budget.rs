//! `[[servers]] sampling_tokens_per_day`: a per-server ceiling on the tokens (prompt +
//! completion, as the backend reports them) its routed sampling may spend per UTC day. A
//! request is admitted while the day's spend is under the ceiling (a request's own size is not
//! known before the backend answers, so the last admitted one may overshoot by its size).
//! Counted per proxy process: `serve` shares it between the sessions of a server; each `wrap`
//! process counts its own.

use std::sync::Mutex;

const DAY: u64 = 86_400;

pub struct TokenBudget {
    per_day: u64,
    /// (UTC day number, tokens spent that day).
    spent: Mutex<(u64, u64)>,
}

impl TokenBudget {
    pub fn new(per_day: u64) -> TokenBudget {
        TokenBudget {
            per_day,
            spent: Mutex::new((0, 0)),
        }
    }

    pub fn per_day(&self) -> u64 {
        self.per_day
    }

    /// `Err(ms until the next UTC day)` when today's tokens are spent. `now`: Unix seconds.
    pub fn check(&self, now: u64) -> Result<(), u64> {
        let mut s = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 != now / DAY {
            *s = (now / DAY, 0);
        }
        if s.1 >= self.per_day {
            return Err((DAY - now % DAY) * 1000);
        }
        Ok(())
    }

    pub fn spend(&self, now: u64, tokens: u64) {
        let mut s = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 != now / DAY {
            *s = (now / DAY, 0);
        }
        s.1 = s.1.saturating_add(tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_stops_at_the_ceiling_until_the_next_utc_day() {
        let b = TokenBudget::new(100);
        let noon = 20_000 * DAY + DAY / 2;
        assert_eq!(b.check(noon), Ok(()));
        b.spend(noon, 60);
        assert_eq!(b.check(noon), Ok(()));
        b.spend(noon, 60);
        assert_eq!(b.check(noon + 1), Err((DAY / 2 - 1) * 1000));
        assert_eq!(b.check(noon + DAY / 2), Ok(()), "a new day");
    }
}
