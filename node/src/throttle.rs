//! Refusal throttling (docs/protocol.md §7, check H3).
//!
//! Every refusal of a pinned peer's request is a durable audit leaf, so a
//! peer whose requests keep failing the checks (a broken client, a stolen TLS
//! key probing, a flood) would otherwise make the node write and flush one
//! leaf per request for as long as it likes. A peer refused
//! `max_refusals_per_minute` times within one minute is throttled: for
//! `refusal_throttle_ms` every request of that peer is refused at once with
//! `RESOURCE_EXHAUSTED`, before any check and without a leaf of its own; one
//! `refusals_throttled` leaf records when the throttling began and until when
//! it lasts, and a `throttling_ended` leaf, written by the node's minute tick
//! after it ended (or at shutdown), how many requests were refused unrecorded.
//! Other peers are not affected. The state is in memory only: a crash loses
//! the count of a throttling under way, and a restart ends it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::identity::NodeId;

/// One peer's refusals in the current minute.
#[derive(Debug, Default)]
struct Window {
    /// When the current throttling began, ms.
    began_ms: i64,
    /// When the current counting minute began, ms.
    minute_start_ms: i64,
    /// Refusals recorded since then.
    recorded: u32,
    /// Throttled until this time, ms (0: not throttled).
    until_ms: i64,
    /// Requests refused unrecorded during the current throttling.
    unrecorded: u64,
}

/// The per-peer refusal counters.
#[derive(Debug)]
pub struct RefusalGuard {
    /// Recorded refusals per peer per minute before throttling; 0: never throttle.
    limit: u32,
    /// How long a throttling lasts, ms.
    throttle_ms: i64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    peers: HashMap<NodeId, Window>,
    /// Throttlings that ended and are not yet taken for the log.
    ended: Vec<Ended>,
}

/// A throttling that ended, for its `throttling_ended` leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The peer.
    pub peer: NodeId,
    /// When it began and ended, ms since the epoch.
    pub began_ms: i64,
    /// When it ended (or was cut short by shutdown), ms since the epoch.
    pub until_ms: i64,
    /// Requests refused unrecorded meanwhile.
    pub unrecorded: u64,
}

/// Moves `w`'s throttling, when it has ended at `now`, to `ended` and starts
/// counting afresh.
fn finish(peer: &NodeId, w: &mut Window, now: i64, ended: &mut Vec<Ended>) {
    if w.until_ms == 0 || now < w.until_ms {
        return;
    }
    tracing::warn!(
        peer = %peer,
        refused_unrecorded = w.unrecorded,
        "refusal throttling of the peer ended"
    );
    ended.push(Ended {
        peer: peer.clone(),
        began_ms: w.began_ms,
        until_ms: w.until_ms,
        unrecorded: w.unrecorded,
    });
    *w = Window {
        minute_start_ms: now,
        ..Window::default()
    };
}

/// A request of a throttled peer: refuse it at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Milliseconds until the throttling ends.
    pub retry_after_ms: u64,
}

/// The throttling that a recorded refusal started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// Refusals within the minute that reached the limit.
    pub refusals: u32,
    /// When it ends, ms since the epoch.
    pub until_ms: i64,
}

impl RefusalGuard {
    /// A guard allowing `limit` recorded refusals per peer per minute (0: no
    /// limit), then throttling for `throttle_ms`.
    pub fn new(limit: u32, throttle_ms: u64) -> RefusalGuard {
        RefusalGuard {
            limit,
            throttle_ms: i64::try_from(throttle_ms).unwrap_or(i64::MAX),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Counters only; a panic elsewhere leaves them usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Throttlings that ended by `now` — every one under way too when
    /// `all` (at shutdown, cut short at `now`) — for their leaves.
    pub fn take_ended(&self, now: i64, all: bool) -> Vec<Ended> {
        let mut inner = self.inner();
        let Inner { peers, ended } = &mut *inner;
        for (peer, w) in peers.iter_mut() {
            if all && w.until_ms > now {
                w.until_ms = now;
            }
            finish(peer, w, now, ended);
        }
        std::mem::take(ended)
    }

    /// Check H3: `Err` while `peer` is throttled at `now` (the request is then
    /// counted as refused unrecorded).
    pub fn check(&self, peer: &NodeId, now: i64) -> Result<(), Throttled> {
        if self.limit == 0 {
            return Ok(());
        }
        let mut inner = self.inner();
        let Inner { peers, ended } = &mut *inner;
        let Some(w) = peers.get_mut(peer) else {
            return Ok(());
        };
        if w.until_ms != 0 && now < w.until_ms {
            w.unrecorded += 1;
            return Err(Throttled {
                retry_after_ms: u64::try_from(w.until_ms.saturating_sub(now)).unwrap_or(0),
            });
        }
        finish(peer, w, now, ended);
        Ok(())
    }

    /// Counts one recorded refusal of `peer` at `now`; `Some` when it reaches
    /// the limit, which starts a throttling.
    pub fn count(&self, peer: &NodeId, now: i64) -> Option<Started> {
        if self.limit == 0 {
            return None;
        }
        let mut inner = self.inner();
        let Inner { peers, ended } = &mut *inner;
        let w = peers.entry(peer.clone()).or_insert_with(|| Window {
            minute_start_ms: now,
            ..Window::default()
        });
        if w.until_ms != 0 && now < w.until_ms {
            // Recorded while throttled (a request admitted just before it began).
            return None;
        }
        finish(peer, w, now, ended);
        if now.saturating_sub(w.minute_start_ms) >= 60_000 {
            *w = Window {
                minute_start_ms: now,
                ..Window::default()
            };
        }
        w.recorded += 1;
        if w.recorded < self.limit {
            return None;
        }
        w.began_ms = now;
        w.until_ms = now.saturating_add(self.throttle_ms.max(1));
        tracing::warn!(
            peer = %peer,
            refusals = w.recorded,
            throttle_ms = self.throttle_ms,
            "peer refused too often: its requests are refused unrecorded for a while"
        );
        Some(Started {
            refusals: w.recorded,
            until_ms: w.until_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    #[test]
    fn the_limit_throttles_one_peer_for_a_while_then_counting_restarts() {
        let guard = RefusalGuard::new(3, 1_000);
        let (mex, col) = (id("MEX"), id("COL"));
        assert_eq!(guard.count(&mex, 0), None);
        assert_eq!(guard.count(&mex, 10), None);
        assert!(guard.check(&mex, 15).is_ok());
        assert_eq!(
            guard.count(&mex, 20),
            Some(Started {
                refusals: 3,
                until_ms: 1_020
            })
        );
        assert_eq!(
            guard.check(&mex, 520),
            Err(Throttled {
                retry_after_ms: 500
            })
        );
        assert!(
            guard.check(&col, 520).is_ok(),
            "other peers are not throttled"
        );
        // A refusal recorded while throttled neither extends nor restarts it.
        assert_eq!(guard.count(&mex, 600), None);
        assert!(guard.check(&mex, 1_019).is_err());
        assert_eq!(guard.take_ended(1_019, false), vec![]);
        assert!(guard.check(&mex, 1_020).is_ok());
        assert_eq!(
            guard.take_ended(1_020, false),
            vec![Ended {
                peer: mex.clone(),
                began_ms: 20,
                until_ms: 1_020,
                unrecorded: 2
            }]
        );
        assert_eq!(guard.take_ended(1_020, false), vec![], "taken once");
        // Counting starts afresh.
        assert_eq!(guard.count(&mex, 1_030), None);
        assert_eq!(guard.count(&mex, 1_040), None);
        assert!(guard.count(&mex, 1_050).is_some());
        // Shutdown cuts a throttling short and takes it.
        assert!(guard.check(&mex, 1_060).is_err());
        let cut = guard.take_ended(1_070, true);
        assert_eq!(cut.len(), 1);
        assert_eq!(
            (cut[0].began_ms, cut[0].until_ms, cut[0].unrecorded),
            (1_050, 1_070, 1)
        );
        assert!(guard.check(&mex, 1_071).is_ok());
    }

    #[test]
    fn refusals_spread_over_minutes_never_throttle_and_zero_disables() {
        let guard = RefusalGuard::new(3, 60_000);
        let mex = id("MEX");
        for minute in 0..10i64 {
            assert_eq!(guard.count(&mex, minute * 60_000), None);
            assert_eq!(guard.count(&mex, minute * 60_000 + 59_000), None);
        }
        let off = RefusalGuard::new(0, 60_000);
        for t in 0..1_000 {
            assert_eq!(off.count(&mex, t), None);
            assert!(off.check(&mex, t).is_ok());
        }
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let guard = RefusalGuard::new(1, u64::MAX);
        let mex = id("MEX");
        let started = guard.count(&mex, i64::MAX - 5).unwrap();
        assert_eq!(started.until_ms, i64::MAX);
        assert!(guard.check(&mex, i64::MIN).is_err());
        let guard = RefusalGuard::new(1, 0);
        assert!(guard.count(&mex, i64::MIN).is_some());
        assert!(guard.check(&mex, i64::MIN).is_err());
    }
}
