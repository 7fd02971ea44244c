//! Mutual authentication of two members on a new connection, before any frame: each proves it
//! holds the ensemble's shared secret by a MAC over the other's fresh nonce, and names its
//! ensemble and raft id, so a stranger, a member of another ensemble or a misconfigured peer
//! never reaches the engine.
//!
//! The exchange (dialer D, listener L), fixed-size records without length prefixes:
//!
//! ```text
//! D -> L  hello: magic "zkrp", version u16, ensemble id u64, raft id u64, nonce [32]
//! L -> D  hello (L's), once D's names a peer of L's ensemble that is not L itself
//! D -> L  proof: HMAC-SHA256(secret, DIALER_TAG   || ensemble id || L's nonce || D || L)
//! L -> D  proof: HMAC-SHA256(secret, LISTENER_TAG || ensemble id || D's nonce || L || D)
//! ```
//!
//! Integers are big-endian. Each side's tag differs, so a proof a member makes as a listener
//! can never pass as a dialer's proof (no reflection of one connection's challenge into
//! another), and the ids' order says who proves to whom. The listener proves last, only to a
//! dialer that proved itself; its proof is also the dialer's sign that it was accepted.
//! Refusals close the connection without a word.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::tls::PeerStream;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The first bytes on a peer connection: "zookeeper-rs peer".
const MAGIC: [u8; 4] = *b"zkrp";
/// The version of this exchange and of the frames after it; a peer speaking another is refused.
pub(super) const PROTOCOL_VERSION: u16 = 1;
const NONCE_BYTES: usize = 32;
const PROOF_BYTES: usize = 32;
/// magic, version, ensemble id, raft id, nonce.
const HELLO_BYTES: usize = 4 + 2 + 8 + 8 + NONCE_BYTES;
const DIALER_TAG: &[u8] = b"zookeeper-rs peer transport 1: dialer proof";
const LISTENER_TAG: &[u8] = b"zookeeper-rs peer transport 1: listener proof";

/// Who this member is, for the exchange.
#[derive(Clone, Copy)]
pub(super) struct Identity<'a> {
    /// The ensemble both sides must belong to.
    pub(super) ensemble_id: u64,
    /// This member's raft id.
    pub(super) raft_id: u64,
    /// The ensemble's shared secret.
    pub(super) secret: &'a [u8],
}

/// Why a handshake did not complete. All but `Io` and `Random` are refusals: the other side
/// is not a member this one may talk to.
#[derive(Debug)]
pub enum HandshakeError {
    /// The first bytes are not a peer hello (another protocol, or garbage).
    WrongMagic([u8; 4]),
    /// A peer speaking another version of this protocol.
    WrongVersion(u16),
    /// A member of another ensemble.
    OtherEnsemble(u64),
    /// A raft id that is not in this member's peer set.
    UnknownMember(u64),
    /// A raft id that is this member's own (two members configured with one id).
    ClaimsOwnId(u64),
    /// The member answering at a peer's address is another one than dialed.
    UnexpectedMember {
        /// The peer dialed.
        expected: u64,
        /// Who answered.
        answered: u64,
    },
    /// The MAC does not verify: the peer does not hold the shared secret.
    WrongProof,
    /// TLS refused the peer (its certificate does not chain to the trust store, or it
    /// refused ours), or the peer does not speak it.
    Tls(String),
    /// A plain connection to a port that takes TLS only (`sslQuorum` without
    /// `portUnification`).
    PlainRefused,
    /// The certificate of the member that proved to be `raft_id` does not name its host.
    CertificateName {
        /// The member.
        raft_id: u64,
        /// The host configured for it (or the address it came from).
        host: String,
    },
    /// The exchange did not end within `handshake_timeout_ms`.
    TimedOut,
    /// The connection failed before the end.
    Io(io::Error),
    /// The system's random source failed, so no nonce could be drawn.
    Random(getrandom::Error),
}

impl HandshakeError {
    /// True when the other side was refused for what it said (as opposed to a connection
    /// that failed or ran out of time).
    pub(super) fn is_refusal(&self) -> bool {
        !matches!(
            self,
            HandshakeError::TimedOut | HandshakeError::Io(_) | HandshakeError::Random(_)
        )
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::WrongMagic(magic) => {
                write!(f, "not a peer hello (starts {magic:02x?})")
            }
            HandshakeError::WrongVersion(version) => write!(
                f,
                "peer protocol version {version}, this member speaks {PROTOCOL_VERSION}"
            ),
            HandshakeError::OtherEnsemble(ensemble_id) => {
                write!(f, "member of another ensemble ({ensemble_id:#x})")
            }
            HandshakeError::UnknownMember(raft_id) => {
                write!(f, "raft id {raft_id} is not a configured peer")
            }
            HandshakeError::ClaimsOwnId(raft_id) => {
                write!(f, "peer claims this member's own raft id {raft_id}")
            }
            HandshakeError::UnexpectedMember { expected, answered } => {
                write!(f, "dialed raft id {expected}, raft id {answered} answered")
            }
            HandshakeError::WrongProof => {
                write!(f, "wrong proof: the peer lacks the shared secret")
            }
            HandshakeError::Tls(reason) => write!(f, "TLS: {reason}"),
            HandshakeError::PlainRefused => {
                write!(f, "a plain connection where sslQuorum asks for TLS")
            }
            HandshakeError::CertificateName { raft_id, host } => write!(
                f,
                "the certificate of raft id {raft_id} does not name its host {host}"
            ),
            HandshakeError::TimedOut => write!(f, "handshake timed out"),
            HandshakeError::Io(error) => write!(f, "handshake failed: {error}"),
            HandshakeError::Random(error) => write!(f, "no random nonce: {error}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<io::Error> for HandshakeError {
    fn from(error: io::Error) -> HandshakeError {
        match error.kind() {
            // A socket timeout reads as WouldBlock on Unix.
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => HandshakeError::TimedOut,
            _ => HandshakeError::Io(error),
        }
    }
}

/// Authenticates a connection this member opened to `peer`, by `deadline`.
pub(super) fn dial(
    stream: &mut PeerStream,
    me: Identity<'_>,
    peer: u64,
    deadline: &Deadline,
) -> Result<(), HandshakeError> {
    let mut stream = Timed { stream, deadline };
    let hello = Hello::new(me)?;
    stream.write_all(&hello.to_bytes())?;
    let theirs = Hello::read(&mut stream)?;
    if theirs.ensemble_id != me.ensemble_id {
        return Err(HandshakeError::OtherEnsemble(theirs.ensemble_id));
    }
    if theirs.raft_id != peer {
        return Err(HandshakeError::UnexpectedMember {
            expected: peer,
            answered: theirs.raft_id,
        });
    }
    let proof = prove(me, DIALER_TAG, &theirs.nonce, peer);
    stream.write_all(&proof)?;
    let mut their_proof = [0u8; PROOF_BYTES];
    stream.read_exact(&mut their_proof)?;
    verify(me, LISTENER_TAG, &hello.nonce, peer, &their_proof)
}

/// Authenticates a connection another member opened to this one, by `deadline`; answers the
/// dialer's raft id. `admit` says whether the raft id the dialer claims may talk to this
/// member (in the peer set, named by its certificate): checked before this member says a
/// word, so a dialer it refuses never counts itself connected.
pub(super) fn accept(
    stream: &mut PeerStream,
    me: Identity<'_>,
    admit: impl Fn(u64) -> Result<(), HandshakeError>,
    deadline: &Deadline,
) -> Result<u64, HandshakeError> {
    let mut stream = Timed { stream, deadline };
    let theirs = Hello::read(&mut stream)?;
    if theirs.ensemble_id != me.ensemble_id {
        return Err(HandshakeError::OtherEnsemble(theirs.ensemble_id));
    }
    if theirs.raft_id == me.raft_id {
        return Err(HandshakeError::ClaimsOwnId(theirs.raft_id));
    }
    admit(theirs.raft_id)?;
    let hello = Hello::new(me)?;
    stream.write_all(&hello.to_bytes())?;
    let mut their_proof = [0u8; PROOF_BYTES];
    stream.read_exact(&mut their_proof)?;
    verify(me, DIALER_TAG, &hello.nonce, theirs.raft_id, &their_proof)?;
    let proof = prove(me, LISTENER_TAG, &theirs.nonce, theirs.raft_id);
    stream.write_all(&proof)?;
    Ok(theirs.raft_id)
}

/// One side's hello (magic and version are implied: `read` refuses any other).
struct Hello {
    ensemble_id: u64,
    raft_id: u64,
    nonce: [u8; NONCE_BYTES],
}

impl Hello {
    fn new(me: Identity<'_>) -> Result<Hello, HandshakeError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce).map_err(HandshakeError::Random)?;
        Ok(Hello {
            ensemble_id: me.ensemble_id,
            raft_id: me.raft_id,
            nonce,
        })
    }

    fn to_bytes(&self) -> [u8; HELLO_BYTES] {
        let mut bytes = [0u8; HELLO_BYTES];
        bytes[..4].copy_from_slice(&MAGIC);
        bytes[4..6].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        bytes[6..14].copy_from_slice(&self.ensemble_id.to_be_bytes());
        bytes[14..22].copy_from_slice(&self.raft_id.to_be_bytes());
        bytes[22..].copy_from_slice(&self.nonce);
        bytes
    }

    /// Reads a hello, checking the magic and the version as soon as they arrive, so garbage
    /// or another protocol is refused after four bytes.
    fn read(stream: &mut impl Read) -> Result<Hello, HandshakeError> {
        let mut bytes = [0u8; HELLO_BYTES];
        stream.read_exact(&mut bytes[..4])?;
        if bytes[..4] != MAGIC {
            return Err(HandshakeError::WrongMagic([
                bytes[0], bytes[1], bytes[2], bytes[3],
            ]));
        }
        stream.read_exact(&mut bytes[4..6])?;
        let version = u16::from_be_bytes([bytes[4], bytes[5]]);
        if version != PROTOCOL_VERSION {
            return Err(HandshakeError::WrongVersion(version));
        }
        stream.read_exact(&mut bytes[6..])?;
        let u64_at = |at: usize| {
            let mut field = [0u8; 8];
            field.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(field)
        };
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&bytes[22..]);
        Ok(Hello {
            ensemble_id: u64_at(6),
            raft_id: u64_at(14),
            nonce,
        })
    }
}

/// The MAC over what `me` proves to `peer` in the role `tag`, answering `peer`'s nonce.
fn mac(
    me: Identity<'_>,
    tag: &[u8],
    nonce: &[u8; NONCE_BYTES],
    prover: u64,
    verifier: u64,
) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(me.secret).expect("HMAC takes a key of any length");
    mac.update(tag);
    mac.update(&me.ensemble_id.to_be_bytes());
    mac.update(nonce);
    mac.update(&prover.to_be_bytes());
    mac.update(&verifier.to_be_bytes());
    mac
}

/// This member's proof for `peer`, over `peer`'s nonce.
fn prove(
    me: Identity<'_>,
    tag: &[u8],
    their_nonce: &[u8; NONCE_BYTES],
    peer: u64,
) -> [u8; PROOF_BYTES] {
    mac(me, tag, their_nonce, me.raft_id, peer)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks `peer`'s proof over this member's nonce, in constant time.
fn verify(
    me: Identity<'_>,
    tag: &[u8],
    my_nonce: &[u8; NONCE_BYTES],
    peer: u64,
    proof: &[u8; PROOF_BYTES],
) -> Result<(), HandshakeError> {
    mac(me, tag, my_nonce, peer, me.raft_id)
        .verify_slice(proof)
        .map_err(|_| HandshakeError::WrongProof)
}

/// When a whole handshake (TLS and this exchange) must be over, so a peer that trickles a
/// byte at a time cannot hold one open longer than `handshake_timeout_ms`.
pub(super) struct Deadline {
    at: Instant,
}

impl Deadline {
    /// `timeout` from now.
    pub(super) fn new(timeout: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + timeout,
        }
    }

    /// Bounds the socket's next reads and writes by what is left; TimedOut once nothing is.
    pub(super) fn arm(&self, socket: &TcpStream) -> io::Result<()> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake timed out",
            ));
        }
        socket.set_read_timeout(Some(left))?;
        socket.set_write_timeout(Some(left))
    }
}

/// A stream whose reads and writes all end by the deadline.
struct Timed<'a> {
    stream: &'a mut PeerStream,
    deadline: &'a Deadline,
}

impl Read for Timed<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.deadline.arm(self.stream.socket())?;
        self.stream.read(buffer)
    }
}

impl Write for Timed<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.deadline.arm(self.stream.socket())?;
        self.stream.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.deadline.arm(self.stream.socket())?;
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    const SECRET: &[u8] = b"the ensemble's shared secret";
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn identity(raft_id: u64) -> Identity<'static> {
        Identity {
            ensemble_id: 0x2a,
            raft_id,
            secret: SECRET,
        }
    }

    /// Two ends of a loopback connection: (dialer's, listener's).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let dialed = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (dialed, accepted)
    }

    fn accept_on(
        socket: &TcpStream,
        me: Identity<'_>,
        is_peer: impl Fn(u64) -> bool,
        timeout: Duration,
    ) -> Result<u64, HandshakeError> {
        let mut stream = PeerStream::Plain(socket.try_clone().unwrap());
        let admit = |raft_id| match is_peer(raft_id) {
            true => Ok(()),
            false => Err(HandshakeError::UnknownMember(raft_id)),
        };
        accept(&mut stream, me, admit, &Deadline::new(timeout))
    }

    fn dial_on(
        socket: &TcpStream,
        me: Identity<'_>,
        peer: u64,
        timeout: Duration,
    ) -> Result<(), HandshakeError> {
        let mut stream = PeerStream::Plain(socket.try_clone().unwrap());
        dial(&mut stream, me, peer, &Deadline::new(timeout))
    }

    /// Runs a dial and an accept against each other: (dial's outcome, accept's).
    fn exchange(
        dialer: Identity<'static>,
        expected: u64,
        listener: Identity<'static>,
        peers: &'static [u64],
    ) -> (Result<(), HandshakeError>, Result<u64, HandshakeError>) {
        let (dialed, accepted) = pair();
        let accepting = thread::spawn(move || {
            let outcome = accept_on(&accepted, listener, |id| peers.contains(&id), TIMEOUT);
            drop(accepted); // a refusal closes the connection
            outcome
        });
        let dialing = dial_on(&dialed, dialer, expected, TIMEOUT);
        drop(dialed); // a refusal closes the connection
        (dialing, accepting.join().unwrap())
    }

    #[test]
    fn members_with_the_secret_authenticate_each_other() {
        let (dialing, accepting) = exchange(identity(2), 1, identity(1), &[2, 3]);
        dialing.unwrap();
        assert_eq!(accepting.unwrap(), 2);
    }

    #[test]
    fn a_dialer_without_the_secret_is_refused() {
        let stranger = Identity {
            secret: b"another secret, same length....",
            ..identity(2)
        };
        let (dialing, accepting) = exchange(stranger, 1, identity(1), &[2]);
        assert!(matches!(accepting, Err(HandshakeError::WrongProof)));
        assert!(matches!(dialing, Err(HandshakeError::Io(_))), "{dialing:?}");
    }

    #[test]
    fn a_listener_without_the_secret_is_refused() {
        // A listener that answers a hello and then makes up its proof (it cannot verify the
        // dialer's, having no secret, so it skips that).
        let (dialed, accepted) = pair();
        let impostor = thread::spawn(move || {
            let mut stream = &accepted;
            Hello::read(&mut stream).unwrap();
            let hello = Hello::new(identity(1)).unwrap();
            stream.write_all(&hello.to_bytes()).unwrap();
            let mut their_proof = [0u8; PROOF_BYTES];
            stream.read_exact(&mut their_proof).unwrap();
            stream.write_all(&[0x5a; PROOF_BYTES]).unwrap();
        });
        let dialing = dial_on(&dialed, identity(2), 1, TIMEOUT);
        impostor.join().unwrap();
        assert!(matches!(dialing, Err(HandshakeError::WrongProof)));
    }

    #[test]
    fn members_of_another_ensemble_are_refused() {
        let other = Identity {
            ensemble_id: 0x2b,
            ..identity(2)
        };
        let (_, accepting) = exchange(other, 1, identity(1), &[2]);
        assert!(matches!(
            accepting,
            Err(HandshakeError::OtherEnsemble(0x2b))
        ));
    }

    #[test]
    fn unknown_members_and_the_listener_s_own_id_are_refused() {
        let (_, accepting) = exchange(identity(9), 1, identity(1), &[2, 3]);
        assert!(matches!(accepting, Err(HandshakeError::UnknownMember(9))));
        let (_, accepting) = exchange(identity(1), 1, identity(1), &[1, 2]);
        assert!(matches!(accepting, Err(HandshakeError::ClaimsOwnId(1))));
    }

    #[test]
    fn another_member_answering_at_a_peer_s_address_is_refused() {
        let (dialing, _) = exchange(identity(2), 3, identity(1), &[2]);
        assert!(matches!(
            dialing,
            Err(HandshakeError::UnexpectedMember {
                expected: 3,
                answered: 1
            })
        ));
    }

    #[test]
    fn other_protocols_and_versions_are_refused_from_their_first_bytes() {
        let refusal = |bytes: &'static [u8]| {
            let (mut dialed, accepted) = pair();
            dialed.write_all(bytes).unwrap();
            accept_on(&accepted, identity(1), |_| true, TIMEOUT)
        };
        assert!(matches!(
            refusal(b"GET / HTTP/1.1\r\n"),
            Err(HandshakeError::WrongMagic(magic)) if &magic == b"GET "
        ));
        assert!(matches!(
            refusal(&[0xff, 0xff, 0xff, 0xff]),
            Err(HandshakeError::WrongMagic([0xff, 0xff, 0xff, 0xff]))
        ));
        assert!(matches!(
            refusal(b"zkrp\x00\x02"),
            Err(HandshakeError::WrongVersion(2))
        ));
    }

    #[test]
    fn a_silent_peer_times_out() {
        let (_dialed, accepted) = pair();
        let started = Instant::now();
        let outcome = accept_on(&accepted, identity(1), |_| true, Duration::from_millis(100));
        assert!(
            matches!(outcome, Err(HandshakeError::TimedOut)),
            "{outcome:?}"
        );
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < TIMEOUT,
            "{waited:?}"
        );
    }

    #[test]
    fn proofs_depend_on_role_nonce_and_direction() {
        let nonce = [7u8; NONCE_BYTES];
        let proof = prove(identity(2), DIALER_TAG, &nonce, 1);
        assert_ne!(proof, prove(identity(2), LISTENER_TAG, &nonce, 1));
        assert_ne!(proof, prove(identity(1), DIALER_TAG, &nonce, 2));
        assert_ne!(proof, prove(identity(2), DIALER_TAG, &[8; NONCE_BYTES], 1));
        verify(identity(1), DIALER_TAG, &nonce, 2, &proof).unwrap();
        assert!(matches!(
            verify(identity(1), LISTENER_TAG, &nonce, 2, &proof),
            Err(HandshakeError::WrongProof)
        ));
    }
}
