//! Progress of a restore: pages written out of the database size, and the INFO line logged at
//! every 10 % with the rate and the time left. Pure: the caller passes the clock.

use crate::storage::UnixNanos;

#[derive(Debug, Clone)]
pub struct Progress {
    total: u64,
    done: u64,
    bytes: u64,
    started: UnixNanos,
    /// Last tenth reported (0..=10).
    reported: u64,
}

/// One progress report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub percent: f64,
    /// MiB per second written so far.
    pub mib_per_s: f64,
    /// Seconds left at that rate.
    pub eta_s: f64,
}

impl Progress {
    pub fn new(total_pages: u64, now: UnixNanos) -> Self {
        Self { total: total_pages, done: 0, bytes: 0, started: now, reported: 0 }
    }

    /// Percent written, one tenth of a percent precise (100 when there is nothing to write).
    pub fn permille(&self) -> u32 {
        ((self.done.min(self.total) * 1000).checked_div(self.total).unwrap_or(1000)) as u32
    }

    /// Count `pages` more written (`bytes` of them); a report when a new tenth is reached.
    pub fn record(&mut self, pages: u64, bytes: u64, now: UnixNanos) -> Option<Report> {
        self.done += pages;
        self.bytes += bytes;
        let tenth = (self.done.min(self.total) * 10).checked_div(self.total).unwrap_or(10);
        if tenth <= self.reported {
            return None;
        }
        self.reported = tenth;
        let secs = ((now - self.started).max(1) as f64) / 1e9;
        let rate = self.bytes as f64 / secs;
        let left_pages = self.total.saturating_sub(self.done) as f64;
        let per_page = if self.done == 0 { 0.0 } else { secs / self.done as f64 };
        Some(Report {
            percent: self.permille() as f64 / 10.0,
            mib_per_s: rate / (1024.0 * 1024.0),
            eta_s: left_pages * per_page,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_once_per_tenth_with_rate_and_eta() {
        let mut p = Progress::new(100, 0);
        assert_eq!(p.record(5, 5 << 20, 1_000_000_000), None);
        let r = p.record(5, 5 << 20, 1_000_000_000).unwrap();
        assert_eq!(r.percent, 10.0);
        assert!((r.mib_per_s - 10.0).abs() < 1e-9);
        assert!((r.eta_s - 9.0).abs() < 1e-9);
        // Jumping several tenths reports once, at the newest.
        let r = p.record(30, 0, 2_000_000_000).unwrap();
        assert_eq!(r.percent, 40.0);
        assert_eq!(p.record(1, 0, 2_000_000_000), None);
        assert_eq!(p.permille(), 410);
    }

    #[test]
    fn empty_database_is_complete() {
        let mut p = Progress::new(0, 0);
        assert_eq!(p.permille(), 1000);
        assert_eq!(p.record(0, 0, 1).map(|r| r.percent), Some(100.0));
    }
}
