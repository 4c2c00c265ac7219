//! The publish journal: what makes an acknowledged event durable.
//!
//! Every round of the group commit writes its events to sled (plain writes, no
//! transaction), appends them to this file and syncs it (`fdatasync`) before anyone hears
//! 202. A sync of a small append takes a fraction of a millisecond, where a flush of sled
//! writes out every page changed since the last one (deliveries, attempts, queue) and
//! took up to 20 ms at the tail. sled then flushes on its own schedule; at start, every
//! record is published again ([`recover`]): what sled lost of a round in a crash is
//! written again, and every journaled event's fan-out runs again, making only the
//! deliveries that are not stored. Once sled has flushed everything journaled (at a
//! checkpoint, at a flush a writer asked for, at a graceful stop), the file starts over
//! ([`Journal::reset`]), so a restart after a graceful stop replays nothing.
//!
//! A record is `length (u32 LE) ‖ CRC-32 of the payload (u32 LE) ‖ payload` (a batch of
//! publications as JSON). Reading stops at the first record that is torn or does not
//! match its checksum: a crash in the middle of an append, whose round was never
//! acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::{Error, Publication, Result, Store};

const HEADER: usize = 8;

/// The journal file, open for appending.
#[derive(Debug)]
pub struct Journal {
    file: File,
    /// Bytes of whole records in the file.
    len: u64,
}

fn io(e: std::io::Error) -> Error {
    Error::Backend(Box::new(e))
}

impl Journal {
    /// Opens (or creates) the journal at `path`, with the publications of the records
    /// it holds.
    pub fn open(path: &Path) -> Result<(Self, Vec<Publication>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut publications = Vec::new();
        let mut at = 0;
        while let Some((batch, next)) = record_at(&bytes, at) {
            publications.extend(batch);
            at = next;
        }
        let mut journal = Self { file, len: 0 };
        // A torn tail is cut off, so the next append follows the last whole record.
        journal.truncate(at as u64)?;
        Ok((journal, publications))
    }

    /// Appends `batch` and waits until it is on disk; returns the record's length.
    pub fn append(&mut self, batch: &[Publication]) -> Result<usize> {
        let payload = serde_json::to_vec(batch).map_err(|e| Error::Corrupt(e.into()))?;
        let length = u32::try_from(payload.len())
            .map_err(|_| Error::Backend("a publish round too large to journal".into()))?;
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&length.to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        record.extend_from_slice(&payload);
        let written = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += record.len() as u64;
                Ok(record.len())
            }
            Err(e) => {
                // Cut off what part of the record got written, so later records do not
                // follow a torn one (reading would stop there and never see them).
                self.truncate(self.len)?;
                Err(io(e))
            }
        }
    }

    /// Empties the journal; only once the store has flushed every event in it.
    pub fn reset(&mut self) -> Result<()> {
        self.truncate(0)
    }

    /// Bytes in the journal.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the journal holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn truncate(&mut self, len: u64) -> Result<()> {
        self.file.set_len(len).map_err(io)?;
        self.file.seek(SeekFrom::Start(len)).map_err(io)?;
        self.file.sync_all().map_err(io)?;
        self.len = len;
        Ok(())
    }
}

/// The batch of the whole record at `at`, and where the next one starts.
fn record_at(bytes: &[u8], at: usize) -> Option<(Vec<Publication>, usize)> {
    let header = bytes.get(at..at + HEADER)?;
    let length = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let payload = bytes.get(at + HEADER..at + HEADER + length)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let batch = serde_json::from_slice(payload).ok()?;
    Some((batch, at + HEADER + length))
}

/// Publishes the records of `journal` again (what the store lost in a crash is written
/// again; every fan-out job is set again), flushes, and empties the journal. Returns how
/// many publications the journal held.
pub fn recover(store: &dyn Store, path: &Path) -> Result<(Journal, usize)> {
    let (mut journal, publications) = Journal::open(path)?;
    if !publications.is_empty() {
        store.publish(&publications)?;
        store.flush()?;
    }
    journal.reset()?;
    Ok((journal, publications.len()))
}

#[cfg(test)]
mod tests {
    use super::super::sled_store::tests::pending_jobs;
    use super::*;

    fn publication(id: &str) -> Publication {
        super::super::sled_store::tests::publication(id, Some(&format!("key-{id}")))
    }

    fn ids(publications: &[Publication]) -> Vec<&str> {
        publications.iter().map(|p| p.event.id.as_str()).collect()
    }

    #[test]
    fn records_come_back_in_order_until_a_torn_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let (mut journal, none) = Journal::open(&path).expect("open");
        assert!(none.is_empty() && journal.is_empty());
        journal
            .append(&[publication("evt_1"), publication("evt_2")])
            .expect("append");
        journal.append(&[publication("evt_3")]).expect("append");
        let whole = journal.len();
        drop(journal);

        let (_, read) = Journal::open(&path).expect("reopen");
        assert_eq!(ids(&read), ["evt_1", "evt_2", "evt_3"]);
        assert_eq!(read[0].idempotency, publication("evt_1").idempotency);

        // A crash in the middle of the third append: the torn record is dropped, and the
        // next append follows the last whole one.
        let mut file = OpenOptions::new().append(true).open(&path).expect("file");
        file.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'['])
            .expect("torn");
        drop(file);
        let (mut journal, read) = Journal::open(&path).expect("reopen");
        assert_eq!(ids(&read), ["evt_1", "evt_2", "evt_3"]);
        assert_eq!(journal.len(), whole);
        journal.append(&[publication("evt_4")]).expect("append");
        drop(journal);
        let (mut journal, read) = Journal::open(&path).expect("reopen");
        assert_eq!(ids(&read), ["evt_1", "evt_2", "evt_3", "evt_4"]);

        journal.reset().expect("reset");
        drop(journal);
        assert!(Journal::open(&path).expect("reopen").1.is_empty());
    }

    #[test]
    fn a_record_that_fails_its_checksum_ends_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let (mut journal, _) = Journal::open(&path).expect("open");
        journal.append(&[publication("evt_1")]).expect("append");
        let first = journal.len() as usize;
        journal.append(&[publication("evt_2")]).expect("append");
        drop(journal);
        let mut bytes = std::fs::read(&path).expect("read");
        *bytes.last_mut().expect("bytes") ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        let (journal, read) = Journal::open(&path).expect("reopen");
        assert_eq!(ids(&read), ["evt_1"]);
        assert_eq!(journal.len() as usize, first);
    }

    #[test]
    fn recovery_stores_what_the_store_lost_and_sets_every_job_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = super::super::SledStore::open(&dir.path().join("store")).expect("store");
        let path = dir.path().join("journal");
        // evt_1 reached the store and was fanned out (its job is done); evt_2 was lost,
        // all but its idempotency key.
        store.publish(&[publication("evt_1")]).expect("publish");
        let done = super::super::FanoutDone {
            job: super::super::FanoutJob {
                tenant: "t".into(),
                event: "evt_1".into(),
            },
            queued: Vec::new(),
            ends: true,
        };
        store.complete_fanout(&[done]).expect("fan-out");
        store.publish(&[publication("evt_2")]).expect("publish");
        store.forget_event("t", "evt_2");
        let (mut journal, _) = Journal::open(&path).expect("open");
        journal
            .append(&[publication("evt_1"), publication("evt_2")])
            .expect("append");
        drop(journal);

        let (journal, count) = recover(&store, &path).expect("recover");
        assert_eq!(count, 2);
        assert!(journal.is_empty());
        assert!(
            store.event("t", "evt_2").expect("read").is_some(),
            "its own idempotency key does not stop evt_2 from being stored again"
        );
        assert_eq!(
            pending_jobs(&store),
            ["evt_1", "evt_2"],
            "evt_1's job may have been lost with the round: it runs again"
        );
        assert!(Journal::open(&path).expect("reopen").1.is_empty());
    }
}
