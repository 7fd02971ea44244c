//! Guards against four-letter answers whose shape differs from ZooKeeper 3.8's (line names,
//! order, separators), which breaks the scripts, monitoring and kazoo calls that parse them.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use zookeeper_core::server::net::{FourLetterWhitelist, NetConfig, NetServer};
use zookeeper_core::{Acl, CreateMode, Watcher};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const IO_WAIT: Duration = Duration::from_secs(5);

/// Sends `word` on a fresh connection and returns everything the server writes before closing.
fn ask(address: SocketAddr, word: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(IO_WAIT)).unwrap();
    stream.write_all(word.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Asks `word` once the server's connection table has settled to `connections` (the asking
/// one included): a word's own connection is released only after its answer is read, so the
/// previous word's connection may still be listed for a moment.
fn ask_settled(address: SocketAddr, word: &str, connections: usize) -> String {
    let deadline = std::time::Instant::now() + IO_WAIT;
    loop {
        let summary = ask(address, "srvr");
        if summary.contains(&format!("Connections: {connections}\n"))
            || std::time::Instant::now() > deadline
        {
            return ask(address, word);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).unwrap();
    body
}

fn write_frame(stream: &mut TcpStream, body: &[u8]) {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    stream.write_all(&frame).unwrap();
}

/// Opens a session over the wire as a ZooKeeper client does, then reads `path` with a watch
/// (xid 1), so the connection has a session, a last operation and a watch to report.
fn wire_session_watching(address: SocketAddr, path: &str) -> (TcpStream, i64) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(IO_WAIT)).unwrap();
    let mut connect = Vec::new();
    connect.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    connect.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
    connect.extend_from_slice(&10_000i32.to_be_bytes()); // timeOut
    connect.extend_from_slice(&0i64.to_be_bytes()); // sessionId
    connect.extend_from_slice(&16i32.to_be_bytes()); // passwd
    connect.extend_from_slice(&[0u8; 16]);
    connect.push(0); // readOnly
    write_frame(&mut stream, &connect);
    let response = read_frame(&mut stream);
    let session_id = i64::from_be_bytes(response[8..16].try_into().unwrap());

    let mut get_data = Vec::new();
    get_data.extend_from_slice(&1i32.to_be_bytes()); // xid
    get_data.extend_from_slice(&4i32.to_be_bytes()); // getData
    get_data.extend_from_slice(&(path.len() as i32).to_be_bytes());
    get_data.extend_from_slice(path.as_bytes());
    get_data.push(1); // watch
    write_frame(&mut stream, &get_data);
    let reply = read_frame(&mut stream);
    assert_eq!(&reply[0..4], &1i32.to_be_bytes(), "the reply's xid");
    assert_eq!(&reply[12..16], &0i32.to_be_bytes(), "the reply's error");
    (stream, session_id)
}

/// Asserts `line` is `<number>/<decimal>/<number>`, as ZooKeeper prints min/avg/max latency.
fn assert_latency_triple(triple: &str) {
    let parts: Vec<&str> = triple.split('/').collect();
    assert_eq!(parts.len(), 3, "{triple}");
    parts[0].parse::<u64>().unwrap();
    assert!(parts[1].contains('.'), "a Java double: {triple}");
    parts[1].parse::<f64>().unwrap();
    parts[2].parse::<u64>().unwrap();
}

/// The lines srvr prints, and stat prints after its Clients section.
fn assert_server_summary(lines: &[&str], znodes: usize) {
    let names = [
        "Latency min/avg/max: ",
        "Received: ",
        "Sent: ",
        "Connections: ",
        "Outstanding: ",
        "Zxid: 0x",
        "Mode: ",
        "Node count: ",
    ];
    assert_eq!(lines.len(), names.len(), "{lines:?}");
    for (line, name) in lines.iter().zip(names) {
        assert!(
            line.starts_with(name),
            "{line:?} should start with {name:?}"
        );
    }
    assert_latency_triple(&lines[0]["Latency min/avg/max: ".len()..]);
    assert_eq!(lines[6], "Mode: standalone");
    assert_eq!(lines[7], format!("Node count: {znodes}"));
}

fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zk-four-letter-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("marker"), b"12345").unwrap();
    dir
}

#[test]
fn every_word_answers_in_zookeepers_shape() -> TestResult {
    let (server, _clock) = common::server();
    let dir = data_dir();
    let net = NetServer::start(
        server.engine().clone(),
        NetConfig {
            address: "127.0.0.1:0".parse()?,
            four_letter_words: FourLetterWhitelist::all(),
            data_dir: Some(dir.clone()),
            ..NetConfig::default()
        },
    )?;
    let address = net.local_address();

    let client = server.connect()?;
    client.create(
        "/app",
        b"hello",
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    )?;
    client.create("/app/e1", b"x", &Acl::open_unsafe(), CreateMode::Ephemeral)?;
    let (watcher, _events) = Watcher::channel();
    client.get_data("/app", Some(watcher))?;
    let (watcher, _events2) = Watcher::channel();
    client.exists("/nothere", Some(watcher))?;
    let (_stream, wire_session) = wire_session_watching(address, "/app");
    let local_session = client.session_id();
    // ZooKeeper's counts hold the root twice (its node table keys it by "" and "/"): the
    // four system znodes and two of the test's print as 7.
    let znodes = 4 + 2 + 1;

    assert_eq!(ask(address, "ruok"), "imok");
    assert_eq!(ask(address, "isro"), "rw");

    let srvr = ask(address, "srvr");
    let lines: Vec<&str> = srvr.lines().collect();
    assert!(lines[0].starts_with("Zookeeper version: 3."), "{srvr}");
    assert!(lines[0].contains(", built on "), "{srvr}");
    assert_server_summary(&lines[1..], znodes);
    assert!(srvr.ends_with('\n'));

    let stat = ask_settled(address, "stat", 2);
    let lines: Vec<&str> = stat.lines().collect();
    assert_eq!(lines[1], "Clients:", "{stat}");
    // The wire session, then the connection asking; then a blank line.
    assert!(lines[2].starts_with(" /127.0.0.1:"), "{stat}");
    assert!(lines[2].contains("[1](queued="), "{stat}");
    // sent is counted just after the write, so a fast reader may see it one short.
    assert!(lines[2].contains(",recved=2,sent="), "{stat}");
    assert!(
        lines[3].ends_with("[0](queued=0,recved=1,sent=0)"),
        "{stat}"
    );
    assert_eq!(lines[4], "");
    assert_server_summary(&lines[5..], znodes);
    assert_eq!(lines[8], "Connections: 2", "{stat}");

    let cons = ask_settled(address, "cons", 2);
    let lines: Vec<&str> = cons.lines().collect();
    assert_eq!(lines.len(), 3, "{cons}");
    let fields = lines[0]
        .split_once("](")
        .and_then(|(_, fields)| fields.strip_suffix(')'))
        .unwrap();
    let names: Vec<&str> = fields
        .split(',')
        .map(|field| field.split('=').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "queued", "recved", "sent", "sid", "lop", "est", "to", "lcxid", "lzxid", "lresp",
            "llat", "minlat", "avglat", "maxlat"
        ],
        "{cons}"
    );
    assert!(
        fields.contains(&format!(",sid=0x{wire_session:x},lop=GETD,est=")),
        "{cons}"
    );
    assert!(fields.contains(",to=10000,lcxid=0x1,lzxid=0x"), "{cons}");
    assert!(
        lines[1].ends_with("[0](queued=0,recved=1,sent=0)"),
        "{cons}"
    );
    assert_eq!(lines[2], "");

    let mntr = ask_settled(address, "mntr", 2);
    let entries: Vec<(&str, &str)> = mntr
        .lines()
        .map(|line| line.split_once('\t').unwrap())
        .collect();
    assert!(entries
        .iter()
        .all(|(key, value)| key.starts_with("zk_") && !key.contains(' ') && !value.contains('\t')));
    assert_eq!(entries[0].0, "zk_version");
    assert_eq!(entries[1], ("zk_server_state", "standalone"));
    let value = |key: &str| {
        entries
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.to_string())
            .unwrap_or_else(|| panic!("{key} missing from\n{mntr}"))
    };
    assert_eq!(value("zk_znode_count"), znodes.to_string());
    assert_eq!(value("zk_ephemerals_count"), "1");
    assert_eq!(value("zk_global_sessions"), "2");
    assert_eq!(value("zk_watch_count"), "3");
    assert_eq!(value("zk_num_alive_connections"), "2");
    // The system znodes' 43 bytes, "/app" + "hello", "/app/e1" + "x".
    assert_eq!(value("zk_approximate_data_size"), (43 + 9 + 8).to_string());
    assert!(value("zk_avg_latency").contains('.'));
    for key in [
        "zk_min_latency",
        "zk_max_latency",
        "zk_packets_received",
        "zk_packets_sent",
        "zk_outstanding_requests",
    ] {
        value(key).parse::<u64>()?;
    }
    if cfg!(target_os = "linux") {
        assert!(value("zk_open_file_descriptor_count").parse::<u64>()? > 0);
        assert!(value("zk_max_file_descriptor_count").parse::<u64>()? > 0);
    }

    let conf = ask(address, "conf");
    let dir = std::path::absolute(&dir)?;
    let expected = format!(
        "clientPort={}\nsecureClientPort=-1\ndataDir={dir}\ndataDirSize=5\ndataLogDir={dir}\n\
         dataLogSize=5\ntickTime=2000\nmaxClientCnxns=60\nminSessionTimeout=4000\n\
         maxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=0\n",
        address.port(),
        dir = dir.display()
    );
    assert_eq!(conf, expected);

    let envi = ask(address, "envi");
    let mut lines = envi.lines();
    assert_eq!(lines.next(), Some("Environment:"));
    // kazoo's server_version(): the digits and dots at the start of zookeeper.version.
    let version = lines
        .next()
        .unwrap()
        .strip_prefix("zookeeper.version=")
        .unwrap();
    let digits: String = version
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    assert_eq!(
        digits
            .split('.')
            .filter_map(|d| d.parse::<u32>().ok())
            .count(),
        3
    );
    for key in ["host.name", "os.name", "os.arch", "user.name", "user.dir"] {
        assert!(
            envi.lines()
                .any(|line| line.starts_with(&format!("{key}="))),
            "{key}"
        );
    }

    // Both sessions watch /app's data; the in-process one also waits for /nothere.
    assert_eq!(
        ask(address, "wchs"),
        "2 connections watching 2 paths\nTotal watches:3\n"
    );
    let mut sessions = [local_session, wire_session];
    sessions.sort_unstable();
    let session_paths = |session: i64| {
        if session == local_session {
            "\t/app\n\t/nothere\n"
        } else {
            "\t/app\n"
        }
    };
    assert_eq!(
        ask(address, "wchc"),
        format!(
            "0x{:x}\n{}0x{:x}\n{}\n",
            sessions[0],
            session_paths(sessions[0]),
            sessions[1],
            session_paths(sessions[1])
        )
    );
    assert_eq!(
        ask(address, "wchp"),
        format!(
            "/app\n\t0x{:x}\n\t0x{:x}\n/nothere\n\t0x{local_session:x}\n\n",
            sessions[0], sessions[1]
        )
    );

    let dump = ask(address, "dump");
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines[0], "SessionTracker dump:");
    assert!(
        lines[1].starts_with("Session Sets (") && lines[1].ends_with("/(2):"),
        "{dump}"
    );
    // "<n> expire at Sun Nov 22 01:05:33 UTC 2026:", as Java prints a Date.
    let (count, when) = lines[2].split_once(" expire at ").unwrap();
    count.parse::<usize>()?;
    let when: Vec<&str> = when.strip_suffix(':').unwrap().split(' ').collect();
    assert_eq!(
        (when.len(), when[4], when[3].len()),
        (6, "UTC", 8),
        "{dump}"
    );
    for session in sessions {
        assert!(dump.contains(&format!("\t0x{session:x}\n")), "{dump}");
    }
    assert!(
        dump.ends_with(&format!(
            "ephemeral nodes dump:\nSessions with Ephemerals (1):\n0x{local_session:x}:\n\
             \t/app/e1\nConnections dump:\n"
        )),
        "{dump}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn words_off_the_whitelist_say_so_and_srvr_always_answers() -> TestResult {
    let (server, _clock) = common::server();
    let net = NetServer::start(
        server.engine().clone(),
        NetConfig {
            address: "127.0.0.1:0".parse()?,
            four_letter_words: FourLetterWhitelist::parse("ruok"),
            ..NetConfig::default()
        },
    )?;
    let address = net.local_address();
    assert_eq!(ask(address, "ruok"), "imok");
    assert_eq!(
        ask(address, "stat"),
        "stat is not executed because it is not in the whitelist.\n"
    );
    assert!(ask(address, "srvr").starts_with("Zookeeper version: "));
    Ok(())
}
