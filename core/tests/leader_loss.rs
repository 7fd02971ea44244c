//! A follower told that its leader's connection ended (`Engine::peer_lost`, from the TCP
//! transport) campaigns within a few raft ticks instead of an election timeout, and the same
//! news about a leader that is alive, or about a member that does not lead, changes nothing.
//! Replayed on the simulated ensemble: ticks are counted, not timed.

use zookeeper_core::replication::raft_id;
use zookeeper_core::sim::cluster::Cluster;
use zookeeper_core::storage::Crash;

/// Raft ticks a follower waits for a silent leader before it may campaign (the simulation's
/// `election_ticks`); the news must beat it by far.
const CAMPAIGN_TICKS_MAX: usize = 4;

fn tick(cluster: &Cluster) {
    cluster.raft_tick();
    while cluster.network.deliver_next() {}
}

fn settle(cluster: &Cluster) -> usize {
    for _ in 0..400 {
        if let Some(leader) = cluster.leader() {
            // Heartbeats reach every follower, so each knows the leader.
            for _ in 0..3 {
                tick(cluster);
            }
            return leader;
        }
        tick(cluster);
    }
    panic!("no leader");
}

fn term(cluster: &Cluster, member: usize) -> u64 {
    cluster
        .live(member)
        .and_then(|engine| engine.replication_status())
        .expect("running")
        .term
}

/// Ticks until a member other than `old` leads; answers how many ticks it took.
fn ticks_to_new_leader(cluster: &Cluster, old: usize, ticks_max: usize) -> Option<usize> {
    for ticks in 1..=ticks_max {
        tick(cluster);
        if cluster.leader().is_some_and(|leader| leader != old) {
            return Some(ticks);
        }
    }
    None
}

#[test]
fn followers_told_their_leader_died_elect_another_within_a_few_ticks() {
    for seed in 0..20 {
        let mut cluster = Cluster::new(3, seed);
        let old = settle(&cluster);
        let old_term = term(&cluster, (old + 1) % 3);
        cluster.kill(old, Crash::Clean);
        for member in (0..3).filter(|member| *member != old) {
            cluster.live(member).unwrap().peer_lost(raft_id(old as u8));
        }
        let ticks = ticks_to_new_leader(&cluster, old, CAMPAIGN_TICKS_MAX);
        assert!(
            ticks.is_some(),
            "seed {seed}: no new leader within {CAMPAIGN_TICKS_MAX} ticks"
        );
        // One election: the survivors did not split their votes.
        let new = cluster.leader().unwrap();
        assert_eq!(term(&cluster, new), old_term + 1, "seed {seed}");
    }
}

#[test]
fn without_the_news_followers_wait_out_the_election_timeout() {
    let mut cluster = Cluster::new(3, 7);
    let old = settle(&cluster);
    cluster.kill(old, Crash::Clean);
    assert_eq!(ticks_to_new_leader(&cluster, old, CAMPAIGN_TICKS_MAX), None);
    assert!(ticks_to_new_leader(&cluster, old, 200).is_some());
}

#[test]
fn news_of_a_leader_that_is_alive_disturbs_nothing() {
    let cluster = Cluster::new(3, 11);
    let leader = settle(&cluster);
    let leader_term = term(&cluster, leader);
    let follower = (leader + 1) % 3;
    cluster
        .live(follower)
        .unwrap()
        .peer_lost(raft_id(leader as u8));
    for _ in 0..50 {
        tick(&cluster);
    }
    assert_eq!(cluster.leader(), Some(leader));
    for member in 0..3 {
        assert_eq!(term(&cluster, member), leader_term, "member {member}");
    }
}

#[test]
fn news_of_a_member_that_does_not_lead_changes_nothing() {
    let mut cluster = Cluster::new(3, 13);
    let leader = settle(&cluster);
    let leader_term = term(&cluster, leader);
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    cluster.kill(b, Crash::Clean);
    cluster.live(a).unwrap().peer_lost(raft_id(b as u8));
    for _ in 0..50 {
        tick(&cluster);
    }
    assert_eq!(cluster.leader(), Some(leader));
    assert_eq!(term(&cluster, a), leader_term);
}
