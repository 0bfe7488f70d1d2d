//! Reading a pull's pages ahead of its writes: a task fetches page after page from the plugin
//! while the run writes, and the run takes everything fetched so far as one write batch.
//!
//! When the CRM answers faster than the database writes (a local CRM, small pages such as
//! HubSpot's 100), pages queue up and the run writes several at once: one set of transactions,
//! run items and counters per batch instead of per page. When the CRM is the slower side, each
//! batch is the one page that arrived, written while the next is read.

use std::collections::HashSet;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::pull::PageFetch;
use super::run::{Fatal, required};
use crate::plugins::bindings::adapter::CrmRecord;

/// Pages read ahead of the writes at most (memory stays a few pages whatever the entity's size).
const READ_AHEAD: usize = 4;

/// A batch grows from queued pages until it holds this many records.
const WRITE_BATCH: usize = 1_000;

/// What the reading task hands over.
enum Read {
    /// One page's records, and the cursor that follows it.
    Page(Vec<CrmRecord>, Option<String>),
    /// The pull's last page was handed over.
    End,
}

/// Which pages a pull reads: the page size to ask for and when to stop.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadPlan {
    /// Records still wanted (a pull with a limit); `None` for all.
    pub remaining: Option<usize>,
    /// The most records a page may bring.
    pub page_size: usize,
    /// A pull of named ids: an empty page ends it even with a cursor.
    pub by_ids: bool,
}

impl ReadPlan {
    fn next_size(&self) -> usize {
        self.remaining.map_or(self.page_size, |r| r.min(self.page_size))
    }
}

/// The pages of one pull, read by a task that stops when the reader is dropped.
pub(super) struct PageReader {
    pages: mpsc::Receiver<Result<Read, Fatal>>,
    task: tokio::task::JoinHandle<()>,
    ended: bool,
    /// A failure read behind pages not yet handed over: handed over after them.
    failed: Option<Fatal>,
    /// The cursor after the last page handed over: where a pull that stopped after writing it
    /// would continue.
    resume_at: Option<String>,
}

impl Drop for PageReader {
    fn drop(&mut self) {
        // A run that stops early (a fatal error) leaves no fetch running behind it.
        self.task.abort();
    }
}

impl PageReader {
    /// Starts reading with `fetch` (one page from a cursor, of a size) from the first page.
    pub(super) fn start(fetch: impl Fn(Option<String>, usize) -> PageFetch + Send + 'static, plan: ReadPlan) -> Self {
        Self::start_at(fetch, plan, None)
    }

    /// Starts reading from `cursor` (`None`: the first page).
    pub(super) fn start_at(
        fetch: impl Fn(Option<String>, usize) -> PageFetch + Send + 'static,
        plan: ReadPlan,
        cursor: Option<String>,
    ) -> Self {
        let (send, pages) = mpsc::channel(READ_AHEAD);
        let task = tokio::spawn(read_pages(fetch, plan, cursor, send).instrument(tracing::Span::current()));
        Self { pages, task, ended: false, failed: None, resume_at: None }
    }

    /// The cursor that follows the last page handed over (`None` at the end, or before a page).
    pub(super) fn resume_at(&self) -> Option<&str> {
        self.resume_at.as_deref()
    }

    /// The next batch to write: every page read so far, at least one (waiting for it), up to
    /// [`WRITE_BATCH`] records; a record that comes twice is kept as last read. `None` once the
    /// pull's last page was taken.
    pub(super) async fn next_batch(&mut self) -> Result<Option<Vec<CrmRecord>>, Fatal> {
        let Some(mut batch) = self.next_page().await? else { return Ok(None) };
        let mut pages = 1;
        while batch.len() < WRITE_BATCH && !self.ended {
            match self.pages.try_recv() {
                Ok(read) => match self.take(read) {
                    Ok(Some(page)) => {
                        batch.extend(page);
                        pages += 1;
                    }
                    Ok(None) => {}
                    // The pages before the failure are written first, as they were read.
                    Err(fatal) => {
                        self.failed = Some(fatal);
                        break;
                    }
                },
                Err(_) => break,
            }
        }
        Ok(Some(if pages > 1 { keep_last_of_each(batch) } else { batch }))
    }

    async fn next_page(&mut self) -> Result<Option<Vec<CrmRecord>>, Fatal> {
        if let Some(fatal) = self.failed.take() {
            return Err(fatal);
        }
        while !self.ended {
            match self.pages.recv().await {
                Some(read) => {
                    if let Some(page) = self.take(read)? {
                        return Ok(Some(page));
                    }
                }
                // Without its `End`, the pull did not finish: never take that for a complete read.
                None => return Err(Fatal("the pull's page reader stopped before the last page".to_owned())),
            }
        }
        Ok(None)
    }

    fn take(&mut self, read: Result<Read, Fatal>) -> Result<Option<Vec<CrmRecord>>, Fatal> {
        match read? {
            Read::Page(records, next) => {
                self.resume_at = next;
                Ok(Some(records))
            }
            Read::End => {
                self.ended = true;
                Ok(None)
            }
        }
    }
}

/// Fetches pages until the CRM has no more (or the limit is reached), handing each over; stops
/// at the first error (handed over too) or when nobody takes pages any more.
async fn read_pages(
    fetch: impl Fn(Option<String>, usize) -> PageFetch,
    mut plan: ReadPlan,
    mut cursor: Option<String>,
    pages: mpsc::Sender<Result<Read, Fatal>>,
) {
    loop {
        let size = plan.next_size();
        if size == 0 {
            break;
        }
        let page = match required("pull", fetch(cursor, size).await) {
            Ok(page) => page,
            Err(fatal) => {
                let _ = pages.send(Err(fatal)).await;
                return;
            }
        };
        let mut records = page.records;
        if let Some(remaining) = plan.remaining.as_mut() {
            records.truncate(*remaining);
            *remaining -= records.len();
        }
        let empty = records.is_empty();
        let next = page.next_cursor.filter(|_| !(plan.by_ids && empty));
        if pages.send(Ok(Read::Page(records, next.clone()))).await.is_err() {
            return;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let _ = pages.send(Ok(Read::End)).await;
}

/// The records of several pages with each CRM id once, where it was last read (a record changed
/// while the pages were read can come twice; its later copy is the newer).
fn keep_last_of_each(records: Vec<CrmRecord>) -> Vec<CrmRecord> {
    let mut seen = HashSet::with_capacity(records.len());
    let mut kept: Vec<CrmRecord> = records.into_iter().rev().filter(|r| seen.insert(r.id.clone())).collect();
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::adapter::Page;

    fn record(id: &str, modified: &str) -> CrmRecord {
        CrmRecord { id: id.to_owned(), fields: Vec::new(), modified_at: Some(modified.to_owned()), deleted: false }
    }

    /// A CRM of `pages` pages of `per_page` records (ids `p{page}-{i}`), cursors `1`, `2`, ….
    fn paged_crm(pages: usize, per_page: usize) -> impl Fn(Option<String>, usize) -> PageFetch + Send + 'static {
        move |cursor: Option<String>, size: usize| {
            let page: usize = cursor.as_deref().map_or(0, |c| c.parse().unwrap_or(0));
            let records = (0..per_page.min(size)).map(|i| record(&format!("p{page}-{i}"), "2026-01-01T00:00:00Z"));
            let next = (page + 1 < pages).then(|| (page + 1).to_string());
            let answer = Page { records: records.collect(), next_cursor: next };
            Box::pin(async move { Ok(Ok(answer)) })
        }
    }

    async fn read_all(mut reader: PageReader) -> Vec<Vec<CrmRecord>> {
        let mut batches = Vec::new();
        while let Some(batch) = reader.next_batch().await.unwrap() {
            batches.push(batch);
        }
        batches
    }

    #[tokio::test]
    async fn every_record_is_read_once_in_order_and_queued_pages_are_written_together() {
        let reader = PageReader::start(paged_crm(7, 100), ReadPlan { remaining: None, page_size: 100, by_ids: false });
        // Let the reader fill its queue before the first batch is taken.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let batches = read_all(reader).await;
        let ids: Vec<String> = batches.iter().flatten().map(|r| r.id.clone()).collect();
        let expected: Vec<String> = (0..7).flat_map(|p| (0..100).map(move |i| format!("p{p}-{i}"))).collect();
        assert_eq!(ids, expected);
        assert!(batches.len() < 7, "queued pages were batched: {} batches", batches.len());
        assert!(batches.iter().all(|b| b.len() <= WRITE_BATCH + 100));
    }

    #[tokio::test]
    async fn a_limit_stops_the_reading_mid_page() {
        let reader =
            PageReader::start(paged_crm(10, 100), ReadPlan { remaining: Some(250), page_size: 100, by_ids: false });
        let read: usize = read_all(reader).await.iter().map(Vec::len).sum();
        assert_eq!(read, 250);
    }

    #[tokio::test]
    async fn an_error_is_handed_over_after_the_pages_before_it() {
        let fetch = |cursor: Option<String>, _size: usize| -> PageFetch {
            let answer = match cursor {
                None => {
                    Ok(Ok(Page { records: vec![record("a", "2026-01-01T00:00:00Z")], next_cursor: Some("x".into()) }))
                }
                Some(_) => Ok(Err(crate::plugins::bindings::AdapterError::Forbidden(
                    crate::plugins::bindings::adapter::ErrorInfo {
                        message: "down".into(),
                        crm_code: None,
                        field: None,
                    },
                ))),
            };
            Box::pin(async move { answer })
        };
        let mut reader = PageReader::start(fetch, ReadPlan { remaining: None, page_size: 100, by_ids: false });
        let mut read = 0;
        let error = loop {
            match reader.next_batch().await {
                Ok(Some(batch)) => read += batch.len(),
                Ok(None) => panic!("the failed read must not look complete"),
                Err(fatal) => break fatal,
            }
        };
        assert_eq!(read, 1);
        assert!(error.0.contains("down"), "{}", error.0);
    }

    #[test]
    fn a_record_read_twice_is_kept_where_it_was_last_read() {
        let kept = keep_last_of_each(vec![
            record("a", "2026-01-01T00:00:00Z"),
            record("b", "2026-01-01T00:00:00Z"),
            record("a", "2026-01-02T00:00:00Z"),
        ]);
        let ids: Vec<(&str, &str)> =
            kept.iter().map(|r| (r.id.as_str(), r.modified_at.as_deref().unwrap_or_default())).collect();
        assert_eq!(ids, [("b", "2026-01-01T00:00:00Z"), ("a", "2026-01-02T00:00:00Z")]);
    }
}
