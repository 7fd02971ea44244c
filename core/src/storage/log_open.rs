//! Opening the log: every segment read in order, a torn tail of the last one cut off, and
//! damage a crash cannot explain refused with the file and offset that show it.

use super::*;

impl FileLog {
    /// Opens the log in `dir` (creating the directory if missing), recovering from a crash,
    /// and returns it with what it holds; the caller skips the entries its snapshot covers.
    ///
    /// A torn tail of the last segment is cut off (later appends overwrite it). Files not named
    /// `log.*` are left alone.
    ///
    /// # Errors
    ///
    /// `Corrupt` for damage a crash cannot explain: a bad record followed by a valid one, a bad
    /// record in a segment other than the last, entry indexes that do not increase by one, a
    /// segment whose first entry is not its name's, a segment of hard states only that is not
    /// the last or is named among the entries before it. `NewerFormat` for a header version above
    /// `FORMAT_VERSION`; `Foreign` for a `log.*` file not named by 16 hex digits; `Io` when the
    /// disk fails or `options` are invalid.
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: &Path,
        options: LogOptions,
    ) -> Result<(FileLog, LogContents), StorageError> {
        options.validate()?;
        disk.create_dir_all(dir)?;
        let mut named: Vec<(u64, PathBuf)> = Vec::new();
        let mut leftovers = false;
        for name in disk.list(dir)? {
            // A segment a paced removal had renamed when the process stopped: finish it.
            if name.starts_with(REMOVING_PREFIX) {
                disk.remove(&dir.join(&name))?;
                leftovers = true;
                continue;
            }
            let Some(digits) = name.strip_prefix(SEGMENT_PREFIX) else {
                continue;
            };
            let path = dir.join(&name);
            match parse_index(digits) {
                Some(index) => named.push((index, path)),
                None => return Err(StorageError::Foreign { file: path }),
            }
        }
        if leftovers {
            disk.sync_dir(dir)?;
        }
        named.sort_by_key(|(index, _)| *index);

        let mut contents = LogContents::default();
        let mut segments: Vec<Segment> = Vec::new();
        let mut last_scan: Option<Scan> = None;
        let mut empty_last: Option<PathBuf> = None;
        for (position, (first_index, path)) in named.iter().enumerate() {
            let is_last = position + 1 == named.len();
            let bytes = disk.read(path)?;
            let previous_index = contents.entries.last().map(|entry| entry.index);
            let scan = scan_segment(path, &bytes, *first_index, previous_index, is_last)?;
            let mut last_index = None;
            let mut hard_state = None;
            let mut entries = Vec::new();
            for record in &scan.records {
                match record {
                    LogRecord::Entry(entry) => {
                        last_index = Some(entry.index);
                        entries.push(entry.clone());
                    }
                    LogRecord::HardState(state) => hard_state = Some(*state),
                }
            }
            let Some(last_index) = last_index else {
                if is_last && hard_state.is_some() {
                    // Only hard states: a vote before any entry, or the hard state kept through
                    // a cut or a reset (which a crash may have interrupted before the segment
                    // was named after the next index). The log continues after the entries
                    // before it, or at its name when there are none; the next entry names it.
                    if segments
                        .last()
                        .is_some_and(|previous| previous.last_index >= *first_index)
                    {
                        return Err(StorageError::Corrupt {
                            file: path.clone(),
                            offset: HEADER_BYTES,
                            reason: "a segment holding only hard states is named among the \
                                     entries before it"
                                .into(),
                        });
                    }
                    segments.push(Segment {
                        path: path.clone(),
                        first_index: *first_index,
                        last_index: *first_index - 1,
                    });
                    contents.hard_state = hard_state;
                    last_scan = Some(scan);
                    continue;
                }
                if is_last {
                    // Created but nothing in it survived the crash: no acknowledged entry lives
                    // here, and keeping it would misname the next entry appended.
                    empty_last = Some(path.clone());
                    continue;
                }
                return Err(StorageError::Corrupt {
                    file: path.clone(),
                    offset: HEADER_BYTES,
                    reason: "a segment other than the last holds no entries".into(),
                });
            };
            segments.push(Segment {
                path: path.clone(),
                first_index: *first_index,
                last_index,
            });
            contents.entries.append(&mut entries);
            if hard_state.is_some() {
                contents.hard_state = hard_state;
            }
            last_scan = Some(scan);
        }
        debug_assert!(contents
            .entries
            .windows(2)
            .all(|pair| pair[0].index + 1 == pair[1].index));

        if let Some(path) = empty_last {
            disk.remove(&path)?;
            disk.sync_dir(dir)?;
            // The segment before it (if any) becomes the current one; it was scanned as a
            // non-last segment, so look at its tail again.
            last_scan = match segments.last() {
                Some(segment) => {
                    let bytes = disk.read(&segment.path)?;
                    Some(scan_segment(
                        &segment.path,
                        &bytes,
                        segment.first_index,
                        None,
                        true,
                    )?)
                }
                None => None,
            };
        }

        let mut current = None;
        if let (Some(segment), Some(scan)) = (segments.last(), last_scan) {
            let mut file = disk.open(&segment.path)?;
            if scan.dirty_until > scan.end {
                // Zero the torn tail so that only zeros follow the valid records: a shorter
                // record appended later must not leave stale bytes behind it.
                let zeros = vec![0u8; (scan.dirty_until - scan.end) as usize];
                file.write_at(scan.end, &zeros)?;
            }
            // What was read may have come from the page cache of a process that crashed:
            // make it durable before counting it as synced.
            file.sync()?;
            disk.sync_dir(dir)?;
            // A segment of an older format is left as it is: the next record starts a new
            // segment in this format, since a segment's records share its header's version.
            current = (scan.version == FORMAT_VERSION).then_some(OpenSegment::new(
                file,
                scan.end,
                scan.file_bytes,
                segment.last_index + 1 - segment.first_index,
            ));
        }
        let last_index = match contents.entries.last() {
            Some(entry) => entry.index,
            None => segments.last().map_or(0, |segment| segment.last_index),
        };
        let log = FileLog {
            disk,
            dir: dir.to_path_buf(),
            options,
            segments,
            current,
            last_index,
            hard_state: contents.hard_state,
            dir_unsynced: false,
            poisoned: None,
        };
        Ok((log, contents))
    }
}
