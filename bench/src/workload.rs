//! What each request of a run is: its operation (from the mix), its key (from the
//! distribution) and its frame on the wire, all drawn from one seeded generator per session so a
//! seed replays the same requests.

use std::collections::VecDeque;
use std::sync::Arc;

use zookeeper_core::op::{CreateRequest, Op};
use zookeeper_core::proto::wire::{self, Request, RequestFrame};
use zookeeper_core::proto::OpCode;
use zookeeper_core::random::SplitMix64;
use zookeeper_core::{Acl, CreateMode};

use crate::config::{BenchConfig, Distribution, Mix, OpKind};
use crate::zipf::ZipfSampler;

/// The path of key `index` (0-based) under `prefix`.
pub fn key_path(prefix: &str, index: u64) -> String {
    format!("{prefix}/k{index}")
}

/// The path of the `sequence`th znode a create of session `session` makes under `prefix`.
pub fn created_path(prefix: &str, session: usize, sequence: u64) -> String {
    format!("{prefix}/c{session}-{sequence}")
}

/// How a key index is picked.
#[derive(Clone, Debug)]
pub enum KeyChooser {
    /// Uniform over 0..keys.
    Uniform {
        /// How many keys.
        keys: u64,
    },
    /// Zipf over ranks; rank r is key r - 1, so `k0` is the hottest.
    Zipf(ZipfSampler),
}

impl KeyChooser {
    /// The chooser for `keys` keys under `distribution`.
    pub fn new(keys: u64, distribution: Distribution) -> KeyChooser {
        match distribution {
            Distribution::Uniform => KeyChooser::Uniform { keys },
            Distribution::Zipf { exponent } => KeyChooser::Zipf(ZipfSampler::new(keys, exponent)),
        }
    }

    /// A key index in 0..keys.
    pub fn choose(&self, rng: &mut SplitMix64) -> u64 {
        match self {
            KeyChooser::Uniform { keys } => rng.below(*keys),
            KeyChooser::Zipf(sampler) => sampler.sample(rng) - 1,
        }
    }
}

/// What every session of a run shares: where keys live, how requests are picked, the value.
#[derive(Debug)]
pub struct Workload {
    /// The znode everything is created under.
    pub prefix: String,
    /// How often each operation is sent.
    pub mix: Mix,
    /// How keys are picked.
    pub chooser: KeyChooser,
    /// The bytes every write carries.
    pub value: Vec<u8>,
}

impl Workload {
    /// The workload a configuration describes, under `prefix`.
    pub fn new(config: &BenchConfig, prefix: String) -> Workload {
        Workload {
            prefix,
            mix: config.mix.clone(),
            chooser: KeyChooser::new(config.keys, config.distribution),
            // A repeating pattern rather than zeros, in case a server or link compresses.
            value: (0..config.value_bytes)
                .map(|i| b'a' + (i % 26) as u8)
                .collect(),
        }
    }

    /// The create of key `index`, as the setup sends it.
    pub fn key_create(&self, index: u64) -> Op {
        create(key_path(&self.prefix, index), &self.value)
    }
}

fn create(path: String, value: &[u8]) -> Op {
    Op::Create(CreateRequest {
        path,
        data: Some(value.to_vec()),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    })
}

/// One session's stream of requests: its own generator, and the znodes its creates made that
/// its deletes have not yet removed (deletes take the oldest, so a session never deletes a
/// znode before its own create of it was sent; the server runs a session's requests in order).
#[derive(Debug)]
pub struct SessionWorkload {
    workload: Arc<Workload>,
    session: usize,
    rng: SplitMix64,
    creates_sent: u64,
    created: VecDeque<u64>,
}

impl SessionWorkload {
    /// Session `session`'s stream for `seed`: each session draws from its own generator.
    pub fn new(workload: Arc<Workload>, session: usize, seed: u64) -> SessionWorkload {
        // splitmix64 of distinct seeds gives unrelated streams; the odd multiplier spreads
        // neighbouring session numbers across the seed space.
        let session_seed = seed ^ (session as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        SessionWorkload {
            workload,
            session,
            rng: SplitMix64::new(session_seed),
            creates_sent: 0,
            created: VecDeque::new(),
        }
    }

    /// The next request: its kind and op.
    pub fn next_op(&mut self) -> (OpKind, Op) {
        let workload = Arc::clone(&self.workload);
        let kind = workload.mix.kind_at(self.rng.below(workload.mix.total()));
        let prefix = &workload.prefix;
        let op = match kind {
            OpKind::Create => {
                let sequence = self.creates_sent;
                self.creates_sent += 1;
                self.created.push_back(sequence);
                create(
                    created_path(prefix, self.session, sequence),
                    &workload.value,
                )
            }
            OpKind::Delete => {
                let path = match self.created.pop_front() {
                    Some(sequence) => created_path(prefix, self.session, sequence),
                    // Nothing of its own left: a path no create makes, answered NoNode.
                    None => format!("{prefix}/none{}", self.session),
                };
                Op::Delete { path, version: -1 }
            }
            OpKind::Set => Op::SetData {
                path: self.key(),
                data: Some(workload.value.clone()),
                version: -1,
            },
            OpKind::Get => Op::GetData {
                path: self.key(),
                watch: false,
            },
            OpKind::Exists => Op::Exists {
                path: self.key(),
                watch: false,
            },
            OpKind::Children => Op::GetChildren {
                path: self.key(),
                watch: false,
            },
            OpKind::Multi => Op::Multi(vec![
                Op::Check {
                    path: self.key(),
                    version: -1,
                },
                Op::SetData {
                    path: self.key(),
                    data: Some(workload.value.clone()),
                    version: -1,
                },
            ]),
        };
        (kind, op)
    }

    /// The sequence numbers of the znodes this session created and did not delete (a create
    /// the server refused is in here too; deleting it answers NoNode).
    pub fn created(&self) -> impl Iterator<Item = u64> + '_ {
        self.created.iter().copied()
    }

    /// The session this stream belongs to.
    pub fn session(&self) -> usize {
        self.session
    }

    fn key(&mut self) -> String {
        key_path(
            &self.workload.prefix,
            self.workload.chooser.choose(&mut self.rng),
        )
    }
}

/// The opcode a request of `kind` goes under.
pub fn opcode(kind: OpKind) -> OpCode {
    match kind {
        OpKind::Create => OpCode::Create,
        OpKind::Set => OpCode::SetData,
        OpKind::Get => OpCode::GetData,
        OpKind::Exists => OpCode::Exists,
        OpKind::Children => OpCode::GetChildren,
        OpKind::Multi => OpCode::Multi,
        OpKind::Delete => OpCode::Delete,
    }
}

/// Appends the frame of `op` (sent as `opcode`, with `xid`) to `buffer`, through
/// zookeeper-core's encoder: the same bytes its client sends.
pub fn encode_into(buffer: &mut Vec<u8>, xid: i32, opcode: OpCode, op: Op) {
    let frame = RequestFrame {
        xid,
        opcode: opcode.code(),
        multi_opcodes: Vec::new(),
        request: Request::Op(op),
    };
    buffer.extend_from_slice(&wire::encode_request(&frame));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(mix: Mix, keys: u64, distribution: Distribution) -> Arc<Workload> {
        let config = BenchConfig {
            mix,
            keys,
            distribution,
            value_bytes: 8,
            ..BenchConfig::default()
        };
        Arc::new(Workload::new(&config, "/b".into()))
    }

    #[test]
    fn the_mix_is_followed_in_proportion() {
        let mix = Mix::new(&[
            (OpKind::Create, 30),
            (OpKind::Set, 20),
            (OpKind::Get, 40),
            (OpKind::Exists, 5),
            (OpKind::Children, 5),
        ]);
        let mut stream = SessionWorkload::new(workload(mix, 100, Distribution::Uniform), 0, 9);
        let mut counts = [0u32; OpKind::ALL.len()];
        for _ in 0..100_000 {
            counts[stream.next_op().0.index()] += 1;
        }
        let share = |kind: OpKind| f64::from(counts[kind.index()]) / 100_000.0;
        for (kind, expected) in [
            (OpKind::Create, 0.30),
            (OpKind::Set, 0.20),
            (OpKind::Get, 0.40),
            (OpKind::Exists, 0.05),
            (OpKind::Children, 0.05),
        ] {
            assert!(
                (share(kind) - expected).abs() < 0.01,
                "{}: {} against {expected}",
                kind.name(),
                share(kind)
            );
        }
        assert_eq!(
            counts[OpKind::Multi.index()] + counts[OpKind::Delete.index()],
            0
        );
    }

    #[test]
    fn mix_points_map_to_consecutive_ranges() {
        let mix = Mix::new(&[(OpKind::Get, 2), (OpKind::Create, 1), (OpKind::Delete, 3)]);
        let kinds: Vec<&str> = (0..mix.total()).map(|p| mix.kind_at(p).name()).collect();
        assert_eq!(
            kinds,
            ["create", "get", "get", "delete", "delete", "delete"]
        );
        assert_eq!(mix.to_string(), "create=1,get=2,delete=3");
    }

    #[test]
    fn a_seed_replays_the_same_requests_and_sessions_differ() {
        let shared = workload(Mix::default(), 1_000, Distribution::Zipf { exponent: 0.99 });
        let run = |session, seed| {
            let mut stream = SessionWorkload::new(Arc::clone(&shared), session, seed);
            (0..200).map(|_| stream.next_op()).collect::<Vec<_>>()
        };
        assert_eq!(run(0, 5), run(0, 5));
        assert_ne!(run(0, 5), run(1, 5));
        assert_ne!(run(0, 5), run(0, 6));
    }

    #[test]
    fn zipf_keys_favour_k0_and_uniform_keys_do_not() {
        let hits = |distribution| {
            let mix = Mix::new(&[(OpKind::Get, 1)]);
            let mut stream = SessionWorkload::new(workload(mix, 1_000, distribution), 0, 1);
            (0..10_000)
                .filter(|_| {
                    matches!(stream.next_op().1, Op::GetData { ref path, .. } if path == "/b/k0")
                })
                .count()
        };
        // Zipf s=0.99 over 1,000 keys gives k0 about 13 %; uniform gives it 0.1 %.
        assert!(hits(Distribution::Zipf { exponent: 0.99 }) > 1_000);
        assert!(hits(Distribution::Uniform) < 50);
    }

    #[test]
    fn deletes_take_the_sessions_oldest_create_then_a_missing_path() {
        let mix = Mix::new(&[(OpKind::Create, 1), (OpKind::Delete, 1)]);
        let mut stream = SessionWorkload::new(workload(mix, 10, Distribution::Uniform), 3, 2);
        let mut live = VecDeque::new();
        for _ in 0..1_000 {
            match stream.next_op() {
                (OpKind::Create, Op::Create(create)) => live.push_back(create.path),
                (OpKind::Delete, Op::Delete { path, version: -1 }) => match live.pop_front() {
                    Some(oldest) => assert_eq!(path, oldest),
                    None => assert_eq!(path, "/b/none3"),
                },
                other => panic!("unexpected {other:?}"),
            }
        }
        let left: Vec<String> = stream
            .created()
            .map(|sequence| created_path("/b", 3, sequence))
            .collect();
        assert_eq!(left, Vec::from(live));
    }

    #[test]
    fn frames_decode_back_to_the_op() {
        let op = Op::GetData {
            path: "/b/k1".into(),
            watch: false,
        };
        let mut buffer = vec![];
        encode_into(&mut buffer, 7, opcode(OpKind::Get), op.clone());
        let frame = wire::decode_request(&buffer[4..]).unwrap();
        assert_eq!((frame.xid, frame.request), (7, Request::Op(op)));
    }
}
