//! Guards against sessions expiring early (before their bucket), late (a missed bucket), twice,
//! or being revived by a touch after they started closing.

use super::*;

const TICK_MS: u64 = 2_000;

fn tracker() -> SessionTracker {
    SessionTracker::new(TICK_MS, 0)
}

#[test]
fn rounds_to_the_tick_boundary_strictly_after() {
    assert_eq!(round_to_next_interval(0, 2_000), 2_000);
    assert_eq!(round_to_next_interval(1_999, 2_000), 2_000);
    assert_eq!(round_to_next_interval(2_000, 2_000), 4_000);
    assert_eq!(round_to_next_interval(u64::MAX, 2_000), u64::MAX);
}

#[test]
fn expires_exactly_at_the_bucket_boundary_not_before() {
    let mut sessions = tracker();
    assert!(sessions.add(1, 5_000, 100)); // 5_100 rounds up to 6_000
    sessions.check_invariants();
    assert!(sessions.expired(5_999).is_empty());
    assert!(sessions.is_active(1));
    assert_eq!(sessions.expired(6_000), [1]);
    assert!(!sessions.is_active(1));
    assert_eq!(
        sessions.len(),
        1,
        "expired sessions stay tracked until removed"
    );
    sessions.check_invariants();
}

#[test]
fn timeout_on_a_boundary_still_gets_the_next_bucket() {
    let mut sessions = tracker();
    sessions.add(1, 4_000, 0); // 4_000 is a boundary; ZooKeeper rounds to 6_000
    assert!(sessions.expired(4_000).is_empty());
    assert!(sessions.expired(5_999).is_empty());
    assert_eq!(sessions.expired(6_000), [1]);
}

#[test]
fn touch_pushes_expiry() {
    let mut sessions = tracker();
    sessions.add(1, 4_000, 0); // 6_000
    assert!(sessions.touch(1, 3_000)); // 7_000 -> 8_000
    sessions.check_invariants();
    assert!(sessions.expired(7_999).is_empty());
    assert!(sessions.touch(1, 7_999)); // 11_999 -> 12_000
    assert!(sessions.expired(11_999).is_empty());
    assert_eq!(sessions.expired(12_000), [1]);
}

#[test]
fn touch_within_the_same_bucket_changes_nothing() {
    let mut sessions = tracker();
    sessions.add(1, 4_000, 0); // 6_000
    assert!(sessions.touch(1, 1_999)); // 5_999 -> still 6_000
    assert_eq!(sessions.sessions[&1].bucket_ms, Some(6_000));
    assert_eq!(sessions.buckets.len(), 1);
    assert_eq!(sessions.expired(6_000), [1]);
}

#[test]
fn closing_sessions_cannot_be_touched_but_still_expire() {
    let mut sessions = tracker();
    sessions.add(1, 4_000, 0);
    sessions.set_closing(1);
    assert!(!sessions.is_active(1));
    assert!(!sessions.touch(1, 1_000));
    assert_eq!(
        sessions.expired(6_000),
        [1],
        "a close that never lands still expires"
    );
    sessions.set_closing(99); // unknown: ignored
    assert!(!sessions.touch(99, 0), "unknown sessions cannot be touched");
}

#[test]
fn expired_sessions_are_returned_once_and_cannot_be_revived() {
    let mut sessions = tracker();
    sessions.add(1, 4_000, 0);
    assert_eq!(sessions.expired(6_000), [1]);
    assert!(!sessions.touch(1, 6_000));
    assert!(sessions.expired(100_000).is_empty());
    assert!(sessions.remove(1));
    assert!(!sessions.remove(1));
    assert!(sessions.is_empty());
    sessions.check_invariants();
}

#[test]
fn expired_is_sorted_and_covers_every_due_bucket() {
    let mut sessions = tracker();
    for (session_id, timeout_ms) in [
        (30, 4_000),
        (10, 8_000),
        (20, 4_000),
        (5, 12_000),
        (40, 20_000),
    ] {
        sessions.add(session_id, timeout_ms, 0);
    }
    // Buckets: 6_000 {20, 30}, 10_000 {10}, 14_000 {5}, 22_000 {40}. One poll after several.
    assert_eq!(sessions.expired(14_000), [5, 10, 20, 30]);
    sessions.check_invariants();
    assert_eq!(sessions.expired(22_000), [40]);
}

#[test]
fn clock_jump_past_every_bucket_scans_instead_of_walking() {
    let mut sessions = SessionTracker::new(1, 0);
    sessions.add(2, 10, 0);
    sessions.add(1, 1_000, 0);
    sessions.add(3, 5_000_000, 0);
    assert_eq!(sessions.expired(1_000_000_000_000), [1, 2, 3]);
    assert_eq!(sessions.next_expiration_ms(), 1_000_000_000_001);
    sessions.check_invariants();
}

#[test]
fn removed_sessions_never_expire() {
    let mut sessions = tracker();
    sessions.add(1, 4_000, 0);
    sessions.add(2, 4_000, 0);
    assert!(sessions.remove(1));
    assert_eq!(sessions.timeout_ms(1), None);
    sessions.check_invariants();
    assert_eq!(sessions.expired(6_000), [2]);
}

#[test]
fn re_adding_updates_timeout_and_reschedules() {
    let mut sessions = tracker();
    assert!(sessions.add(1, 4_000, 0));
    assert!(!sessions.add(1, 10_000, 0));
    assert_eq!(sessions.timeout_ms(1), Some(10_000));
    assert!(sessions.expired(6_000).is_empty());
    assert_eq!(sessions.expired(12_000), [1]);
    sessions.check_invariants();
}

#[test]
fn clock_going_backwards_loses_no_session() {
    let mut sessions = tracker();
    assert!(sessions.expired(10_000).is_empty()); // cursor now 12_000
    sessions.add(1, 0, 1_000); // bucket 2_000, behind the cursor
    sessions.check_invariants();
    assert!(sessions.expired(1_999).is_empty());
    assert_eq!(sessions.expired(2_000), [1]);
}

#[test]
fn nothing_due_allocates_nothing() {
    let mut sessions = tracker();
    sessions.add(1, 4_000, 0);
    let expired = sessions.expired(1_000);
    assert_eq!(expired.capacity(), 0);
}

#[test]
fn next_expiration_follows_polls() {
    let mut sessions = SessionTracker::new(TICK_MS, 4_500);
    assert_eq!(sessions.next_expiration_ms(), 6_000);
    sessions.expired(7_000);
    assert_eq!(sessions.next_expiration_ms(), 8_000);
}

#[test]
fn negotiate_clamps_like_zookeeper() {
    let tick = 2_000;
    let (min, max) = (
        SESSION_TIMEOUT_TICKS_MIN_DEFAULT * tick,
        SESSION_TIMEOUT_TICKS_MAX_DEFAULT * tick,
    );
    assert_eq!((min, max), (4_000, 40_000));
    assert_eq!(negotiate_timeout(30_000, min, max), 30_000);
    assert_eq!(negotiate_timeout(1, min, max), 4_000);
    assert_eq!(negotiate_timeout(-5, min, max), 4_000);
    assert_eq!(negotiate_timeout(100_000, min, max), 40_000);
    assert_eq!(negotiate_timeout(i64::MAX, min, max), 40_000);
    assert_eq!(negotiate_timeout(4_000, min, max), 4_000);
    assert_eq!(negotiate_timeout(40_000, min, max), 40_000);
    // min > max: the maximum wins, because ZooKeeper applies it last.
    assert_eq!(negotiate_timeout(1, 10_000, 5_000), 5_000);
}

#[test]
#[should_panic(expected = "tick_ms must be greater than 0")]
fn zero_tick_is_rejected() {
    SessionTracker::new(0, 0);
}

#[test]
fn writes_come_from_the_member_the_session_last_attached_to() {
    let mut tracker = SessionTracker::new(2000, 0);
    tracker.add(7, 10_000, 0);
    // No owner yet (a new leader): the first member to write becomes it.
    assert_eq!(tracker.check_owner(7, 2), Ok(()));
    assert_eq!(tracker.check_owner(7, 3), Err(OwnerCheck::Moved));
    tracker.set_owner(7, 3);
    assert_eq!(tracker.check_owner(7, 3), Ok(()));
    assert_eq!(tracker.check_owner(7, 2), Err(OwnerCheck::Moved));
    tracker.set_closing(7);
    assert_eq!(tracker.check_owner(7, 3), Err(OwnerCheck::Expired));
    assert_eq!(tracker.check_owner(8, 3), Err(OwnerCheck::Expired));
    tracker.set_owner(8, 3);
    assert!(!tracker.is_active(8));
}
