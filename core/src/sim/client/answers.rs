//! How a simulated client takes each answer: what it tells the history (linearizable reads
//! and writes of the register and the queue, ephemerals, session checks), and what it does next
//! (a lost connection moves it; a refused setWatches does too).

use super::*;

impl SimClient {
    pub(super) fn answered(
        &mut self,
        context: &mut Context<'_>,
        at: u64,
        epoch: u64,
        request: u64,
        response: crate::op::Response,
    ) {
        let Some((_, pending)) = self.pending.remove(&request) else {
            return;
        };
        let session_id = self.session_id();
        let current = epoch == self.epoch;
        context
            .history
            .answered(self.id, epoch, request, session_id, &response, current);
        // Session checks look at the current connection only: a real client closed the old.
        let checked = session_id.filter(|_| current);
        // A real client reads nothing more from a connection it left.
        if current && response.zxid > self.last_zxid_seen {
            self.last_zxid_seen = response.zxid;
        }
        let result = response.result;
        let lost = matches!(
            result,
            Err(ErrorCode::ConnectionLoss | ErrorCode::SystemError)
        );
        match (pending, &result) {
            (Pending::Sync { paired }, Err(_)) => {
                let key = match paired {
                    Paired::Register(operation) => (true, operation),
                    Paired::Queue(operation) => (false, operation),
                };
                self.voided.insert(key);
            }
            (Pending::RegisterRead { operation, watch }, Ok(Reply::Data { data, stat })) => {
                let value = parse_value(data.as_deref());
                if let Some(session_id) = checked {
                    context.history.register_seen(session_id, at, stat.mzxid);
                    if watch {
                        context.history.watch_set(session_id, stat.mzxid);
                        self.watching = true;
                    }
                }
                self.known_version = Some(stat.version);
                let operation =
                    operation.filter(|operation| !self.voided.remove(&(true, *operation)));
                if let Some(operation) = operation {
                    let output = RegisterOutput::Read {
                        value,
                        version: stat.version,
                    };
                    context.history.register_return(operation, at, output);
                }
            }
            (Pending::RegisterWrite { operation }, Ok(Reply::Stat(stat))) => {
                if let Some(session_id) = checked {
                    context.history.register_written(session_id, at, stat.mzxid);
                }
                self.known_version = Some(stat.version);
                let output = RegisterOutput::Written {
                    version: stat.version,
                };
                context.history.register_return(operation, at, output);
            }
            (Pending::RegisterWrite { operation }, Err(ErrorCode::BadVersion)) => {
                self.known_version = None;
                context
                    .history
                    .register_return(operation, at, RegisterOutput::BadVersion);
            }
            (Pending::Enqueue { operation }, Ok(Reply::Create { path, .. })) => {
                let sequence = sequence_of(path);
                context
                    .history
                    .queue_return(operation, at, QueueOutput::Enqueued(sequence));
            }
            (Pending::Remove { operation }, Ok(Reply::Done)) => {
                context
                    .history
                    .queue_return(operation, at, QueueOutput::Removed);
            }
            (Pending::Remove { operation }, Err(ErrorCode::NoNode)) => {
                context
                    .history
                    .queue_return(operation, at, QueueOutput::NoNode);
            }
            (Pending::List { operation }, Ok(Reply::Children { children, .. })) => {
                let mut listed: Vec<u32> =
                    children.iter().map(|child| sequence_of(child)).collect();
                listed.sort_unstable();
                self.queue_head = listed.first().copied();
                if !self.voided.remove(&(false, operation)) {
                    context
                        .history
                        .queue_return(operation, at, QueueOutput::Listed(listed));
                }
            }
            (Pending::CreateEphemeral { path_number }, Ok(_)) => {
                self.ephemerals.push(path_number);
                context
                    .history
                    .ephemeral_created(&self.ephemeral_path(path_number));
            }
            (Pending::DeleteEphemeral { path_number }, Ok(_)) => {
                context
                    .history
                    .ephemeral_deleted(&self.ephemeral_path(path_number));
            }
            (Pending::Close, Ok(_)) => {
                if let Some(session_id) = session_id {
                    context.history.session_closed(session_id);
                }
                self.session_ended();
            }
            (Pending::SetWatches, Ok(_)) => {
                if let Link::Rewatching { member, session } = self.link.clone() {
                    if epoch == self.epoch {
                        self.link = Link::Up { member, session };
                    }
                }
            }
            _ => {}
        }
        match result {
            Err(ErrorCode::SessionExpired) if epoch == self.epoch => {
                if let Some(session_id) = session_id {
                    context.history.session_expired(session_id, at);
                }
                self.session_ended();
            }
            Err(_) if lost && epoch == self.epoch => self.go_down(),
            Err(_) if matches!(pending, Pending::SetWatches) && epoch == self.epoch => {
                self.go_down()
            }
            _ => {}
        }
    }
}

fn parse_value(data: Option<&[u8]>) -> u64 {
    data.and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|text| text.parse().ok())
        .unwrap_or(u64::MAX)
}

fn sequence_of(path: &str) -> u32 {
    path.rsplit('-')
        .next()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(u32::MAX)
}
