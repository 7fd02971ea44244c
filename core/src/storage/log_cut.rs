//! Cutting the log: a follower's entries that conflict with its leader's, everything before a
//! snapshot a follower installs, and the segments a durable snapshot covers; each durable
//! before anything is written after it, and keeping the newest hard state whatever a crash
//! leaves.

use std::io;
use std::path::Path;

use super::*;

impl FileLog {
    /// Removes every entry after `index` (a follower's entries that conflict with its
    /// leader's), durably, before anything else is written: the log never holds a stale
    /// entry behind a newer one, whatever a crash leaves, and keeps its newest hard state.
    ///
    /// The segments after the one holding `index` go newest first (a crash leaves a prefix of
    /// the log); with a hard state, the newest of them is first replaced by a segment holding
    /// only that, which stays and continues the log. The segment holding `index` is replaced whole, cut
    /// (written under a temporary name, then renamed over it), so a crash finds it cut or not
    /// cut, never torn.
    ///
    /// # Errors
    ///
    /// Any failure poisons the log.
    pub fn truncate_after(&mut self, index: u64) -> io::Result<()> {
        self.check_poisoned()?;
        let result = self
            .flush_current()
            .and_then(|()| self.truncate_inner(index));
        self.poison_on_error(result)
    }

    fn truncate_inner(&mut self, index: u64) -> io::Result<()> {
        if index >= self.last_index {
            return Ok(());
        }
        let Some(kept) = self
            .segments
            .iter()
            .rposition(|segment| segment.first_index <= index)
        else {
            // The cut reaches before the first segment: nothing is kept.
            return self.reset_inner(index);
        };
        self.current = None;
        let segment = self.segments[kept].clone();
        let bytes = self.disk.read(&segment.path)?;
        let scan = scan_segment(&segment.path, &bytes, segment.first_index, None, true)
            .map_err(|error| io::Error::other(error.to_string()))?;
        let cut = cut_offset(&scan, &bytes, index)? as usize;
        let holder = self.remove_segments_after(kept + 1)?;
        // A segment of an older format takes no record of this one.
        let current_format = scan.version == FORMAT_VERSION;
        let mut kept_bytes = bytes[..cut].to_vec();
        if let (None, Some(state), true) = (&holder, self.hard_state, current_format) {
            kept_bytes.extend_from_slice(&encode_record(&RecordRef::HardState(state), 0)?);
        }
        let file = self.replace_segment(&segment.path, &kept_bytes)?;
        self.segments[kept].last_index = index;
        self.last_index = index;
        match holder {
            Some(holder) => self.continue_in(holder, index),
            None if current_format => {
                self.current = Some(OpenSegment::new(
                    file,
                    kept_bytes.len() as u64,
                    kept_bytes.len() as u64,
                    index + 1 - segment.first_index,
                ));
                Ok(())
            }
            None => self.start_with_hard_state(index),
        }
    }

    /// Removes every entry, durably: the log continues at `index + 1` (a follower that
    /// installed a snapshot through `index`), keeping its newest hard state. Segments go as in
    /// `truncate_after`; a crash midway leaves entries of the old log, which the caller's
    /// snapshot covers.
    ///
    /// # Errors
    ///
    /// Any failure poisons the log.
    pub fn reset_after(&mut self, index: u64) -> io::Result<()> {
        self.check_poisoned()?;
        let result = self.flush_current().and_then(|()| self.reset_inner(index));
        self.poison_on_error(result)
    }

    fn reset_inner(&mut self, index: u64) -> io::Result<()> {
        self.current = None;
        let holder = self.remove_segments_after(0)?;
        self.last_index = index;
        match holder {
            Some(holder) => self.continue_in(holder, index),
            None => self.start_with_hard_state(index),
        }
    }

    /// Removes every segment but the first `keep`, newest first, so that a crash leaves a
    /// prefix of the log. With a hard state, the newest segment is first replaced by one
    /// holding only that: it stays (returned, for `continue_in`), so the newest hard state is
    /// never missing and no older one left in a kept segment ever reads as the newest.
    fn remove_segments_after(&mut self, keep: usize) -> io::Result<Option<(Segment, OpenSegment)>> {
        let mut holder = None;
        if let (Some(state), true) = (self.hard_state, self.segments.len() > keep) {
            let newest = self.segments.pop().expect("more segments than kept");
            let bytes = [
                &segment_header()[..],
                &encode_record(&RecordRef::HardState(state), 0)?,
            ]
            .concat();
            let file = self.replace_segment(&newest.path, &bytes)?;
            let open = OpenSegment::new(file, bytes.len() as u64, bytes.len() as u64, 0);
            let last_index = newest.first_index - 1;
            holder = Some((
                Segment {
                    last_index,
                    ..newest
                },
                open,
            ));
        }
        while self.segments.len() > keep {
            let removed = self.segments.pop().expect("more segments than kept");
            self.disk.remove(&removed.path)?;
            self.disk.sync_dir(&self.dir)?;
        }
        Ok(holder)
    }

    /// Continues the log after `index` in the segment holding only the hard state.
    fn continue_in(
        &mut self,
        (segment, open): (Segment, OpenSegment),
        index: u64,
    ) -> io::Result<()> {
        self.segments.push(segment);
        self.current = Some(open);
        self.rename_empty_segment(index + 1)
    }

    /// Continues the log after `index` in a new segment, which opens with the hard state (if
    /// any), durably.
    fn start_with_hard_state(&mut self, index: u64) -> io::Result<()> {
        if self.hard_state.is_some() {
            self.roll(index + 1)?;
            self.sync_inner()?;
        }
        Ok(())
    }

    /// Removes the oldest segments whose entries all have indexes at most `index` (never the
    /// current segment, which is synced first), then syncs the directory. Call it once a durable snapshot covers
    /// `index`.
    ///
    /// # Errors
    ///
    /// A failed removal leaves the log usable (the segments not yet removed stay listed); a
    /// failed sync poisons it.
    pub fn purge_through(&mut self, index: u64) -> io::Result<()> {
        self.detach_through(index)?.run()
    }

    /// Drops segments whose entries all lie at or before `index` from the log and answers
    /// their removal, to run here (`purge_through`) or on another thread: unlinking a 64 MiB
    /// segment takes 10-20 ms on ext4, and a purge removes several. Until the removal runs
    /// (or if a crash comes first) the files stay, which recovery takes as a log that was
    /// not purged yet.
    ///
    /// # Errors
    /// A failed sync of the current segment (the log is then poisoned).
    pub fn detach_through(&mut self, index: u64) -> io::Result<FileRemoval> {
        self.check_poisoned()?;
        let mut removal = FileRemoval {
            disk: self.disk.clone(),
            dir: self.dir.clone(),
            paths: Vec::new(),
        };
        if self.segments.len() > 1 && self.segments[0].last_index <= index {
            // The current segment (and its copy of the hard state) must be durable before the
            // segments before it go, or a crash could leave a log holding nothing.
            let result = self.sync_inner();
            self.poison_on_error(result)?;
        }
        while self.segments.len() > 1 && self.segments[0].last_index <= index {
            removal.paths.push(self.segments.remove(0).path);
        }
        Ok(removal)
    }

    /// Whether the log holds no entry (at most a segment of hard states).
    pub(super) fn holds_no_entries(&self) -> bool {
        self.segments
            .iter()
            .all(|segment| segment.last_index < segment.first_index)
    }

    /// Replaces the segment at `path` with `bytes` in one step a crash cannot tear: written
    /// under a temporary name, synced, renamed over it, the directory synced. Returns the new
    /// file, open for appending.
    fn replace_segment(&mut self, path: &Path, bytes: &[u8]) -> io::Result<Box<dyn DiskFile>> {
        let temporary = self.dir.join(REPLACEMENT_NAME);
        let mut file = self.disk.open(&temporary)?;
        // A replacement cut short by a crash may have left a longer file behind.
        file.set_len(0)?;
        file.write_at(0, bytes)?;
        file.sync()?;
        self.disk.rename(&temporary, path)?;
        self.disk.sync_dir(&self.dir)?;
        self.dir_unsynced = false;
        Ok(file)
    }

    /// Names the current segment, which holds no entry, after `first_index`, durably before
    /// any entry is written into it.
    pub(super) fn rename_empty_segment(&mut self, first_index: u64) -> io::Result<()> {
        let segment = self
            .segments
            .last_mut()
            .expect("the current segment is listed");
        if segment.first_index == first_index {
            return Ok(());
        }
        let path = self.dir.join(segment_name(first_index));
        self.disk.rename(&segment.path, &path)?;
        *segment = Segment {
            path,
            first_index,
            last_index: first_index - 1,
        };
        self.disk.sync_dir(&self.dir)?;
        self.dir_unsynced = false;
        Ok(())
    }
}

/// Where the first entry after `index` starts in a scanned segment (its end when none does).
fn cut_offset(scan: &Scan, bytes: &[u8], index: u64) -> io::Result<u64> {
    let mut offset = HEADER_BYTES;
    for record in &scan.records {
        if let LogRecord::Entry(entry) = record {
            if entry.index > index {
                return Ok(offset);
            }
        }
        let length = u32::from_be_bytes(
            bytes[offset as usize..offset as usize + 4]
                .try_into()
                .expect("four bytes make a u32"),
        );
        offset += RECORD_HEADER_BYTES + u64::from(length);
    }
    Ok(scan.end)
}
