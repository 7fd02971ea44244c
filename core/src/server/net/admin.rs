//! The AdminServer's commands (`/commands/<name>`): ZooKeeper 3.8's JSON answers, with the
//! names and aliases of its `Commands`, computed from the same figures as the four-letter
//! words. A command that has a four-letter word answers only when that word is whitelisted.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde_json::{json, Map, Value};

use super::four_letter::{full_version, live_connections};
use super::four_letter_system::{self, MonitorValue};
use super::{ConnectionInfo, NetShared};
use crate::replication::member_of;
use crate::server::membership::MemberRole;
use crate::server::metrics::Number;
use crate::server::ServerRole;

/// A command: its primary name, its aliases, the four-letter word whose whitelisting it
/// follows (if it has one), and whether it needs a serving server (ZooKeeper's
/// `isServerRequired`).
struct Command {
    names: &'static [&'static str],
    word: Option<&'static str>,
    needs_serving: bool,
}

/// The commands served, primary name first, as ZooKeeper 3.8 registers them. ZooKeeper 3.8
/// has no `snapshot` command (3.9 adds it), so none is served here either.
const COMMANDS: [Command; 15] = [
    command(&["configuration", "conf", "config"], Some("conf"), true),
    command(&["connections", "cons"], Some("cons"), true),
    command(&["dirs"], None, true),
    command(&["dump"], Some("dump"), true),
    command(&["environment", "env", "envi"], Some("envi"), false),
    command(&["is_read_only", "isro"], Some("isro"), true),
    command(&["leader", "lead"], None, true),
    command(&["monitor", "mntr"], Some("mntr"), false),
    command(&["ruok"], Some("ruok"), true),
    command(&["server_stats", "srvr"], Some("srvr"), true),
    command(&["stats", "stat"], Some("stat"), true),
    command(&["voting_view"], None, true),
    command(&["watches", "wchc"], Some("wchc"), true),
    command(&["watches_by_path", "wchp"], Some("wchp"), true),
    command(&["watch_summary", "wchs"], Some("wchs"), true),
];

const fn command(
    names: &'static [&'static str],
    word: Option<&'static str>,
    needs_serving: bool,
) -> Command {
    Command {
        names,
        word,
        needs_serving,
    }
}

/// The page `/commands` answers: a link to each command, sorted, as Jetty's servlet prints.
pub(super) fn links(command_url: &str) -> String {
    let mut names: Vec<&str> = COMMANDS.iter().map(|command| command.names[0]).collect();
    names.sort_unstable();
    names
        .iter()
        .map(|name| format!("<a href=\"{command_url}/{name}\">{name}</a>\n<br/>\n"))
        .collect()
}

/// The JSON answer to the command called `name` (ZooKeeper answers 200 with an `error` field
/// for unknown commands too).
pub(super) fn run(name: &str, shared: &NetShared) -> Value {
    let Some(command) = COMMANDS
        .iter()
        .find(|command| command.names.contains(&name))
    else {
        return answer(name, Err(format!("Unknown command: {name}")));
    };
    let primary = command.names[0];
    if let Some(word) = command.word {
        if !shared.config.four_letter_words.allows(word) {
            let refused = format!("{word} is not executed because it is not in the whitelist.");
            return answer(primary, Err(refused));
        }
    }
    if command.needs_serving && shared.engine.role().is_none() {
        let refused = "This ZooKeeper instance is not currently serving requests";
        return answer(primary, Err(refused.into()));
    }
    answer(primary, body(primary, shared))
}

/// `CommandResponse.toMap`: the command's fields with `command` and `error`.
fn answer(primary: &str, body: Result<Map<String, Value>, String>) -> Value {
    let (mut fields, error) = match body {
        Ok(fields) => (fields, Value::Null),
        Err(error) => (Map::new(), Value::String(error)),
    };
    fields.insert("command".into(), primary.into());
    fields.insert("error".into(), error);
    Value::Object(fields)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(fields) => fields,
        _ => Map::new(),
    }
}

fn body(primary: &str, shared: &NetShared) -> Result<Map<String, Value>, String> {
    let engine = &shared.engine;
    Ok(match primary {
        "ruok" => Map::new(),
        "server_stats" => server_stats(shared),
        "stats" => {
            let mut fields = server_stats(shared);
            let connections: Vec<Value> = live_connections(shared)
                .iter()
                .map(|info| connection(info, shared, true))
                .collect();
            fields.insert("connections".into(), connections.into());
            fields.insert("secure_connections".into(), json!([]));
            fields
        }
        "connections" => {
            let connections: Vec<Value> = live_connections(shared)
                .iter()
                .map(|info| connection(info, shared, false))
                .collect();
            object(json!({ "connections": connections, "secure_connections": [] }))
        }
        "monitor" => four_letter_system::monitor_values(engine)
            .into_iter()
            .map(|(key, value)| (key, monitor_value(value)))
            .collect(),
        "configuration" => configuration(shared),
        "environment" => four_letter_system::environment_entries()
            .into_iter()
            .map(|(key, value)| (key.to_string(), Value::String(value)))
            .collect(),
        "dirs" => {
            let size = four_letter_system::data_dir(shared).map_or(0, |(_, size)| size);
            object(json!({ "datadir_size": size, "logdir_size": size }))
        }
        "is_read_only" => object(json!({
            "read_only": engine.role() == Some(ServerRole::ReadOnly),
        })),
        "watch_summary" => {
            let by_session = engine.watches_by_session();
            let total: usize = by_session.values().map(|paths| paths.len()).sum();
            object(json!({
                "num_connections": by_session.len(),
                "num_paths": engine.watches_by_path().len(),
                "num_total_watches": total,
            }))
        }
        "watches" => {
            let by_session: BTreeMap<String, Vec<String>> = engine
                .watches_by_session()
                .into_iter()
                .map(|(session_id, paths)| (session_id.to_string(), paths.into_iter().collect()))
                .collect();
            object(json!({ "session_id_to_watched_paths": by_session }))
        }
        "watches_by_path" => {
            let by_path: BTreeMap<String, Vec<i64>> = engine
                .watches_by_path()
                .into_iter()
                .map(|(path, sessions)| (path, sessions.into_iter().collect()))
                .collect();
            object(json!({ "path_to_session_ids": by_path }))
        }
        "dump" => {
            let by_expiry: BTreeMap<String, Vec<i64>> = engine
                .sessions_by_expiry()
                .into_iter()
                .map(|(expiry_ms, sessions)| {
                    (expiry_ms.to_string(), sessions.into_iter().collect())
                })
                .collect();
            let ephemerals: BTreeMap<String, Vec<String>> = engine
                .ephemerals_by_session()
                .into_iter()
                .map(|(session_id, paths)| (session_id.to_string(), paths))
                .collect();
            object(json!({
                "expiry_time_to_session_ids": by_expiry,
                "session_id_to_ephemeral_paths": ephemerals,
            }))
        }
        "leader" => leader(shared)?,
        "voting_view" => voting_view(shared),
        _ => unreachable!("{primary} is in COMMANDS"),
    })
}

fn monitor_value(value: MonitorValue) -> Value {
    match value {
        MonitorValue::Text(text) => text.into(),
        MonitorValue::Number(Number::Whole(whole)) => whole.into(),
        MonitorValue::Number(Number::Double(double)) => double.into(),
    }
}

/// A `BufferStats` as Jackson writes it.
fn buffer_stats((last, min, max, _): (i64, i64, i64, u64)) -> Value {
    json!({ "last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max })
}

/// srvr: `ServerStats` as Jackson writes its getters, minus the TLS connection counts and the
/// authentication failures this server does not count.
fn server_stats(shared: &NetShared) -> Map<String, Value> {
    let engine = &shared.engine;
    let metrics = engine.metrics();
    let latency = &metrics.request_latency;
    let role = engine.role().unwrap_or(ServerRole::Standalone);
    let size = four_letter_system::data_dir(shared).map_or(0, |(_, size)| size);
    let client_response = buffer_stats(metrics.client_response_sizes.read());
    let server_stats = json!({
        "packets_sent": metrics.packets_sent.load(Ordering::Relaxed),
        "packets_received": metrics.packets_received.load(Ordering::Relaxed),
        "fsync_threshold_exceed_count":
            metrics.fsync_threshold_exceed_count.load(Ordering::Relaxed),
        "client_response_stats": client_response,
        "data_dir_size": size,
        "log_dir_size": size,
        "provider_null": false,
        "server_state": role.as_str(),
        "last_processed_zxid": engine.last_zxid(),
        "outstanding_requests": 0,
        "avg_latency": latency.avg(),
        "max_latency": latency.max(),
        "min_latency": latency.min(),
        "num_alive_client_connections": metrics.alive_connections.load(Ordering::Relaxed),
        "uptime": metrics.started.elapsed().as_millis() as u64,
    });
    let mut fields = object(json!({
        "version": full_version(),
        "read_only": role == ServerRole::ReadOnly,
        "server_stats": server_stats,
        "client_response": client_response,
        "node_count": engine.reported_node_count(),
    }));
    if role == ServerRole::Leader {
        fields.insert(
            "proposal_stats".into(),
            buffer_stats(engine.proposal_sizes()),
        );
    }
    fields
}

/// `ServerCnxn.getConnectionInfo`: the brief form for stats, the full one for connections.
fn connection(info: &ConnectionInfo, shared: &NetShared, brief: bool) -> Value {
    let session_id = info.session_id.load(Ordering::Relaxed) as i64;
    let mut fields = object(json!({
        "remote_socket_address": info.peer.to_string(),
        "interest_ops": u8::from(session_id != 0),
        "outstanding_requests": info.queued.load(Ordering::Relaxed),
        "packets_received": info.received.load(Ordering::Relaxed),
        "packets_sent": info.sent.load(Ordering::Relaxed),
    }));
    if !brief && session_id != 0 {
        let timeout_ms = shared.engine.session_timeout_ms(session_id).unwrap_or(0);
        let responses = info.responses.lock();
        fields.extend(object(json!({
            "session_id": session_id,
            "last_operation": responses.last_op,
            "established": info.established_ms,
            "session_timeout": timeout_ms,
            "last_cxid": responses.last_cxid,
            "last_zxid": responses.last_zxid,
            "last_response_time": responses.last_response_ms,
            "last_latency": responses.last_latency_ms,
            "min_latency": responses.min_latency_ms(),
            "avg_latency": responses.avg_latency_ms(),
            "max_latency": responses.max_latency_ms,
        })));
    }
    Value::Object(fields)
}

/// conf: `ZooKeeperServerConf.toMap`.
fn configuration(shared: &NetShared) -> Map<String, Value> {
    let config = shared.engine.config();
    let dir = four_letter_system::data_dir(shared)
        .map_or_else(String::new, |(dir, _)| dir.display().to_string());
    object(json!({
        "client_port": shared.local_address.port(),
        "data_dir": dir,
        "data_log_dir": dir,
        "tick_time": config.tick_ms,
        "max_client_cnxns": shared.config.connections_per_ip_max,
        "min_session_timeout": config.session_timeout_ms_min(),
        "max_session_timeout": config.session_timeout_ms_max(),
        "server_id": config.member_id,
        "client_port_listen_backlog": -1,
    }))
}

/// leader: who leads, for an ensemble member; ZooKeeper's standalone server answers that it
/// is not initialized.
fn leader(shared: &NetShared) -> Result<Map<String, Value>, String> {
    if shared.config.ensemble.is_none() {
        return Err("server is not initialized".into());
    }
    let engine = &shared.engine;
    let leader_id = engine
        .replication_status()
        .map(|status| status.leader_id)
        .filter(|raft_id| *raft_id != 0)
        .map(member_of);
    let membership = engine.membership();
    let leader_ip = leader_id
        .and_then(|id| membership.members.get(&id))
        .map_or_else(String::new, |member| member.host.clone());
    Ok(object(json!({
        "is_leader": engine.role() == Some(ServerRole::Leader),
        "leader_id": leader_id.map_or(-1, i64::from),
        "leader_ip": leader_ip,
    })))
}

/// voting_view: the voting members' addresses (ZooKeeper's `QuorumServerView`); empty for a
/// standalone server.
fn voting_view(shared: &NetShared) -> Map<String, Value> {
    let mut view = Map::new();
    if shared.config.ensemble.is_some() {
        for (id, member) in shared.engine.membership().members {
            if member.role != MemberRole::Participant {
                continue;
            }
            let client = member
                .client
                .as_ref()
                .map_or_else(String::new, |(host, port)| {
                    let host = host.clone().unwrap_or_else(|| "0.0.0.0".into());
                    format!("{host}:{port}")
                });
            view.insert(
                id.to_string(),
                json!({
                    "server_addresses": [format!("{}:{}", member.host, member.peer_port)],
                    "election_addresses": [format!("{}:{}", member.host, member.election_port)],
                    "client_address": client,
                    "learner_type": "participant",
                }),
            );
        }
    }
    object(json!({ "current_config": view }))
}

#[cfg(test)]
mod tests {
    //! Guards against a command list that differs from the names ZooKeeper links to.

    use super::*;

    #[test]
    fn the_listing_links_every_primary_name_sorted() {
        let page = links("/commands");
        assert!(page.starts_with(
            "<a href=\"/commands/configuration\">configuration</a>\n<br/>\n\
             <a href=\"/commands/connections\">connections</a>\n<br/>\n"
        ));
        assert_eq!(page.matches("<br/>").count(), COMMANDS.len());
        assert!(
            page.ends_with("<a href=\"/commands/watches_by_path\">watches_by_path</a>\n<br/>\n")
        );
    }

    #[test]
    fn every_alias_is_unique() {
        let mut names: Vec<&str> = COMMANDS
            .iter()
            .flat_map(|c| c.names.iter().copied())
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
